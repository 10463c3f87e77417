"""Workspace backup and restore: one owner's work in one zip archive (issue 5, deliverable 8).

Archive layout (format ``brightrun-workspace``, version 1):

* ``manifest.json`` — format, version, exported_at, owner username, counts.
* ``scaffolding.json`` — every scaffolding row by ``key`` (vertical profiles, personas, arcs,
  topics, prompt templates with all their versions by ``number``).
* ``conversations.jsonl`` — one conversation a line, with its turns and review actions. Scaffolding
  foreign keys are written as keys, the template version as ``[template key, number]``, users as
  usernames, ids as UUID strings.
* ``training_files.jsonl`` — one training file a line with its members and versions; each stored
  file of a version is copied to ``files/<file id>/v<n>/<filename>`` with its sha256.

Restore rules:

* Everything runs in one transaction; a row whose id exists but belongs to another owner aborts the
  whole restore (``id_conflict``) before anything is written.
* Scaffolding is upserted by key; template versions by (template key, number) and never changed: a
  differing body is reported under ``conflicts`` and the existing version is kept.
* Owned rows keep their ids (and timestamps); they are created, or updated only where a value differs,
  so a second restore of the same archive reports 0 created and 0 updated.
* User references (review-action actor, turn editor, member ``added_by``, version ``created_by``)
  are matched by username in this installation; an unknown username is mapped to the restoring owner.
  Template-version ``created_by`` (global scaffolding) becomes empty when unknown.
* Version files are checked against their sha256 and re-uploaded under the new owner's prefix
  (``users/<owner>/training-files/<file id>/v<n>/<filename>``); a conversation's ``enriched_key``
  (its individual v4 file, not part of the archive) is kept only when already under the owner's prefix.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import uuid
import zipfile
from collections import Counter, defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.core.files.base import ContentFile
from django.db import IntegrityError, models, transaction
from django.utils import timezone

from brightrun.errors import ApplicationError
from brightrun.storage import file_storage, owned_key, owner_prefix
from conversations.models import (
    Conversation,
    EmotionalArc,
    NearDuplicateGroup,
    Persona,
    PromptTemplate,
    PromptTemplateVersion,
    ReviewAction,
    TrainingTopic,
    Turn,
    VerticalProfile,
)
from training_files.models import TrainingFile, TrainingFileMember, TrainingFileVersion

FORMAT = "brightrun-workspace"
VERSION = 1

# Scaffolding models keyed by ``key`` and their foreign keys (field name → model keyed by ``key``).
_SCAFFOLDING: list[tuple[str, type[models.Model]]] = [
    ("vertical_profiles", VerticalProfile),
    ("personas", Persona),
    ("emotional_arcs", EmotionalArc),
    ("training_topics", TrainingTopic),
]
_SCAFFOLD_FK = {"persona": Persona, "emotional_arc": EmotionalArc, "training_topic": TrainingTopic}
_USER_FIELDS = {"actor", "edited_by", "added_by", "created_by"}


# --- encoding -------------------------------------------------------------------------------


def _encode(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def _plain_fields(obj: models.Model, *, skip: set[str] = frozenset()) -> dict[str, Any]:
    """Non-relational concrete fields of ``obj`` (JSON-ready), without the ones in ``skip``."""
    data = {}
    for f in obj._meta.concrete_fields:
        if f.is_relation or f.name in skip:
            continue
        data[f.name] = _encode(getattr(obj, f.attname))
    return data


def _username(user_id: Any, cache: dict) -> str | None:
    if user_id is None:
        return None
    if user_id not in cache:
        user = get_user_model()._base_manager.filter(pk=user_id).first()
        cache[user_id] = user.get_username() if user else None
    return cache[user_id]


def _decode(model: type[models.Model], data: dict[str, Any]) -> dict[str, Any]:
    """Archive values → Python values of ``model``'s plain fields (unknown names are ignored)."""
    out = {}
    for name, value in data.items():
        try:
            f = model._meta.get_field(name)
        except FieldDoesNotExist:
            f = None  # a field from a newer schema: skipped
        if f is None:
            continue
        if f.is_relation or not f.concrete:
            continue
        out[f.attname] = None if value is None else f.to_python(value)
    return out


# --- export ---------------------------------------------------------------------------------


def _export_scaffolding(users: dict) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for name, model in _SCAFFOLDING:
        rows = []
        for obj in model._base_manager.order_by("key"):
            row = _plain_fields(obj, skip={"id"})
            for f in obj._meta.concrete_fields:
                if f.is_relation and f.name in _SCAFFOLD_FK:
                    related = getattr(obj, f.name)
                    row[f.name] = related.key if related else None
            rows.append(row)
        data[name] = rows
    templates = []
    for tpl in PromptTemplate._base_manager.select_related("emotional_arc", "current_version").order_by("key"):
        row = _plain_fields(tpl, skip={"id"})
        row["emotional_arc"] = tpl.emotional_arc.key if tpl.emotional_arc else None
        row["current_version"] = tpl.current_version.number if tpl.current_version else None
        row["versions"] = [
            {**_plain_fields(v, skip={"id"}), "created_by": _username(v.created_by_id, users)}
            for v in PromptTemplateVersion._base_manager.filter(template=tpl).order_by("number")
        ]
        templates.append(row)
    data["prompt_templates"] = templates
    return data


def _export_conversation(conv: Conversation, users: dict) -> dict[str, Any]:
    row = _plain_fields(conv)
    row["persona"] = conv.persona.key
    row["emotional_arc"] = conv.emotional_arc.key
    row["training_topic"] = conv.training_topic.key
    tv = conv.template_version
    row["template_version"] = [tv.template.key, tv.number] if tv else None
    row["duplicate_group"] = _encode(conv.duplicate_group_id)
    row["turns"] = [
        {**_plain_fields(t), "edited_by": _username(t.edited_by_id, users)}
        for t in Turn._base_manager.filter(conversation=conv).order_by("index")
    ]
    row["review_actions"] = [
        {**_plain_fields(a), "actor": _username(a.actor_id, users)}
        for a in ReviewAction._base_manager.filter(conversation=conv).order_by("created_at", "id")
    ]
    return row


def workspace_export(*, owner, path: str | Path) -> dict[str, Any]:
    """Write ``owner``'s workspace to the zip archive at ``path``; return the manifest."""
    users: dict = {}
    storage = file_storage()
    counts: Counter = Counter()
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        scaffolding = _export_scaffolding(users)
        for name, rows in scaffolding.items():
            counts[name] = len(rows)
        counts["prompt_template_versions"] = sum(len(t["versions"]) for t in scaffolding["prompt_templates"])
        zf.writestr("scaffolding.json", json.dumps(scaffolding, indent=1, sort_keys=True))

        lines = []
        conversations = (
            Conversation._base_manager.filter(owner=owner)
            .select_related("persona", "emotional_arc", "training_topic", "template_version__template")
            .order_by("created_at", "id")
        )
        for conv in conversations:
            row = _export_conversation(conv, users)
            counts["conversations"] += 1
            counts["turns"] += len(row["turns"])
            counts["review_actions"] += len(row["review_actions"])
            lines.append(json.dumps(row, sort_keys=True))
        zf.writestr("conversations.jsonl", "".join(line + "\n" for line in lines))

        lines = []
        for tf in TrainingFile._base_manager.filter(owner=owner).order_by("created_at", "id"):
            row = _plain_fields(tf)
            row["current_version"] = _encode(tf.current_version_id)
            row["members"] = [
                {
                    **_plain_fields(m),
                    "conversation": str(m.conversation_id),
                    "added_by": _username(m.added_by_id, users),
                }
                for m in TrainingFileMember._base_manager.filter(training_file=tf).order_by("added_at", "id")
            ]
            versions = []
            for v in TrainingFileVersion._base_manager.filter(training_file=tf).order_by("number"):
                vrow = {**_plain_fields(v, skip={"files"}), "created_by": _username(v.created_by_id, users)}
                files = {}
                for fmt, entry in (v.files or {}).items():
                    with storage.open(entry["key"], "rb") as fh:
                        content = fh.read()
                    member = f"files/{tf.pk}/v{v.number}/{entry['filename']}"
                    zf.writestr(member, content)
                    files[fmt] = {
                        "path": member,
                        "filename": entry["filename"],
                        "size": len(content),
                        "sha256": hashlib.sha256(content).hexdigest(),
                    }
                    counts["version_files"] += 1
                vrow["files"] = files
                versions.append(vrow)
            row["versions"] = versions
            counts["training_files"] += 1
            counts["training_file_members"] += len(row["members"])
            counts["training_file_versions"] += len(versions)
            lines.append(json.dumps(row, sort_keys=True))
        zf.writestr("training_files.jsonl", "".join(line + "\n" for line in lines))

        manifest = {
            "format": FORMAT,
            "version": VERSION,
            "exported_at": timezone.now().isoformat(),
            "owner": owner.get_username(),
            "counts": dict(counts),
        }
        zf.writestr("manifest.json", json.dumps(manifest, indent=1, sort_keys=True))
    return manifest


# --- restore --------------------------------------------------------------------------------


def _not_archive(detail: str) -> ApplicationError:
    return ApplicationError(f"Not a Bright Run workspace archive: {detail}.", code="not_a_workspace_archive")


def _read_archive(path: str | Path) -> tuple[zipfile.ZipFile, dict]:
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise _not_archive(f"cannot open it as a zip file ({exc})") from exc
    try:
        manifest = json.loads(zf.read("manifest.json"))
    except KeyError as exc:
        zf.close()
        raise _not_archive("manifest.json is missing") from exc
    except (ValueError, zipfile.BadZipFile) as exc:
        zf.close()
        raise _not_archive("manifest.json is unreadable") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        zf.close()
        raise _not_archive("the manifest names another format")
    if manifest.get("version") != VERSION:
        zf.close()
        raise ApplicationError(
            f"Workspace archive version {manifest.get('version')!r} is not supported (expected {VERSION}).",
            code="unsupported_version",
        )
    return zf, manifest


def _read_json(zf: zipfile.ZipFile, name: str, *, lines: bool) -> Any:
    try:
        text = zf.read(name).decode("utf-8")
        if lines:
            return [json.loads(line) for line in text.splitlines() if line.strip()]
        return json.loads(text)
    except (KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise ApplicationError(f"The archive's {name} is missing or corrupt.", code="corrupt_archive") from exc


class _Restore:
    def __init__(self, *, owner, zf: zipfile.ZipFile):
        self.owner = owner
        self.zf = zf
        self.created: Counter = Counter()
        self.updated: Counter = Counter()
        self.unchanged: Counter = Counter()
        self.conflicts: list[str] = []
        self.uploaded: list[str] = []
        self._users: dict[str, Any] = {}
        self.unknown_users: set[str] = set()

    # users
    def user_id(self, username: str | None, *, fallback_to_owner: bool = True):
        if username is None:
            return None
        if username not in self._users:
            user = get_user_model()._base_manager.filter(username=username).first()
            if user is None:
                self.unknown_users.add(username)
            self._users[username] = user.pk if user else None
        found = self._users[username]
        if found is None and fallback_to_owner:
            return self.owner.pk
        return found

    # generic upsert of an owned row by primary key
    def upsert(self, model: type[models.Model], label: str, pk: Any, values: dict[str, Any]) -> None:
        manager = model._base_manager
        obj = manager.filter(pk=pk).first()
        if obj is None:
            obj = model(pk=pk, **values)
            obj.save(force_insert=True)
            # created_at/updated_at are auto fields: put the archived values back.
            stamps = {k: values[k] for k in ("created_at", "updated_at") if k in values}
            if stamps:
                manager.filter(pk=pk).update(**stamps)
            self.created[label] += 1
            return
        if getattr(obj, "owner_id", self.owner.pk) != self.owner.pk:
            raise ApplicationError(f"{label} {pk} belongs to another user.", code="id_conflict")
        diff = {k: v for k, v in values.items() if getattr(obj, k) != v}
        if diff:
            manager.filter(pk=pk).update(**diff)
            self.updated[label] += 1
        else:
            self.unchanged[label] += 1

    def upsert_by_key(self, model: type[models.Model], label: str, values: dict[str, Any]):
        manager = model._base_manager
        values = {k: v for k, v in values.items() if k not in ("created_at", "updated_at")}
        obj = manager.filter(key=values["key"]).first()
        if model is VerticalProfile and values.get("is_active"):
            others = manager.filter(is_active=True).exclude(key=values["key"])
            if others.exists():  # only one active vertical per installation: keep the local one
                values["is_active"] = False
        if obj is None:
            obj = model(**values)
            obj.save(force_insert=True)
            self.created[label] += 1
            return obj
        diff = {k: v for k, v in values.items() if getattr(obj, k) != v}
        if diff:
            manager.filter(pk=obj.pk).update(**diff)
            for k, v in diff.items():
                setattr(obj, k, v)
            self.updated[label] += 1
        else:
            self.unchanged[label] += 1
        return obj

    def scaffold_id(self, model: type[models.Model], key: str | None):
        if key is None:
            return None
        pk = model._base_manager.filter(key=key).values_list("pk", flat=True).first()
        if pk is None:
            raise ApplicationError(
                f"{model.__name__} {key!r} is neither in the archive nor in this installation.",
                code="missing_scaffolding",
            )
        return pk

    # phases
    def check_ids(self, conversations: list[dict], training_files: list[dict]) -> None:
        ids: dict[type[models.Model], set[str]] = defaultdict(set)
        for c in conversations:
            ids[Conversation].add(c["id"])
            if c.get("duplicate_group"):
                ids[NearDuplicateGroup].add(c["duplicate_group"])
            ids[Turn].update(t["id"] for t in c.get("turns", []))
            ids[ReviewAction].update(a["id"] for a in c.get("review_actions", []))
        for tf in training_files:
            ids[TrainingFile].add(tf["id"])
            ids[TrainingFileMember].update(m["id"] for m in tf.get("members", []))
            ids[TrainingFileVersion].update(v["id"] for v in tf.get("versions", []))
            for m in tf.get("members", []):
                if m["conversation"] not in ids[Conversation]:
                    if not Conversation._base_manager.filter(pk=m["conversation"], owner=self.owner).exists():
                        raise ApplicationError(
                            f"Training file member {m['id']} refers to an unknown conversation.",
                            code="corrupt_archive",
                        )
        for model, pks in ids.items():
            try:
                clash = model._base_manager.filter(pk__in=pks).exclude(owner=self.owner).values_list("pk", flat=True)
                first = next(iter(clash[:1]), None)
            except (ValidationError, ValueError) as exc:  # a malformed UUID
                raise ApplicationError("The archive holds a malformed id.", code="corrupt_archive") from exc
            if first is not None:
                raise ApplicationError(
                    f"{model.__name__} {first} already exists for another user; nothing was imported.",
                    code="id_conflict",
                )

    def scaffolding(self, data: dict[str, Any]) -> None:
        for name, model in _SCAFFOLDING:
            for row in data.get(name, []):
                values = _decode(model, row)
                values.pop("id", None)
                for fk, fk_model in _SCAFFOLD_FK.items():
                    if fk in row and model._meta.get_field(fk):
                        values[f"{fk}_id"] = self.scaffold_id(fk_model, row[fk])
                self.upsert_by_key(model, name, values)
        for row in data.get("prompt_templates", []):
            values = _decode(PromptTemplate, row)
            values.pop("id", None)
            values["emotional_arc_id"] = self.scaffold_id(EmotionalArc, row.get("emotional_arc"))
            tpl = self.upsert_by_key(PromptTemplate, "prompt_templates", values)
            for vrow in row.get("versions", []):
                existing = PromptTemplateVersion._base_manager.filter(template=tpl, number=vrow["number"]).first()
                if existing is not None:
                    if existing.body != vrow.get("body"):
                        self.conflicts.append(
                            f"prompt template {tpl.key} v{vrow['number']}: body differs, kept the existing one"
                        )
                    else:
                        self.unchanged["prompt_template_versions"] += 1
                    continue
                vvalues = _decode(PromptTemplateVersion, vrow)
                vvalues.pop("id", None)
                vvalues.pop("created_at", None)
                vvalues["created_by_id"] = self.user_id(vrow.get("created_by"), fallback_to_owner=False)
                version = PromptTemplateVersion(template=tpl, **vvalues)
                version.save(force_insert=True)
                if "created_at" in vrow:
                    PromptTemplateVersion._base_manager.filter(pk=version.pk).update(
                        created_at=_decode(PromptTemplateVersion, {"created_at": vrow["created_at"]})["created_at"]
                    )
                self.created["prompt_template_versions"] += 1
            current = row.get("current_version")
            if current is not None and tpl.current_version_id is None:
                pk = PromptTemplateVersion._base_manager.filter(template=tpl, number=current).values_list(
                    "pk", flat=True
                )
                PromptTemplate._base_manager.filter(pk=tpl.pk).update(current_version_id=pk.first())

    def conversations(self, rows: list[dict]) -> None:
        prefix = owner_prefix(self.owner.pk)
        for row in rows:
            values = _decode(Conversation, row)
            values["owner_id"] = self.owner.pk
            values["persona_id"] = self.scaffold_id(Persona, row["persona"])
            values["emotional_arc_id"] = self.scaffold_id(EmotionalArc, row["emotional_arc"])
            values["training_topic_id"] = self.scaffold_id(TrainingTopic, row["training_topic"])
            tv = row.get("template_version")
            if tv:
                pk = PromptTemplateVersion._base_manager.filter(template__key=tv[0], number=tv[1]).values_list(
                    "pk", flat=True
                )
                values["template_version_id"] = pk.first()
                if values["template_version_id"] is None:
                    raise ApplicationError(
                        f"Prompt template {tv[0]} v{tv[1]} is neither in the archive nor here.",
                        code="missing_scaffolding",
                    )
            else:
                values["template_version_id"] = None
            group = row.get("duplicate_group")
            if group:
                self.upsert(NearDuplicateGroup, "near_duplicate_groups", group, {"owner_id": self.owner.pk})
            values["duplicate_group_id"] = _decode(Conversation, {"id": group})["id"] if group else None
            if values.get("enriched_key") and not values["enriched_key"].startswith(prefix):
                values["enriched_key"] = ""
            pk = values.pop("id")
            self.upsert(Conversation, "conversations", pk, values)
            for trow in row.get("turns", []):
                tvalues = _decode(Turn, trow)
                tvalues.update(
                    owner_id=self.owner.pk, conversation_id=pk, edited_by_id=self.user_id(trow.get("edited_by"))
                )
                self.upsert(Turn, "turns", tvalues.pop("id"), tvalues)
            for arow in row.get("review_actions", []):
                avalues = _decode(ReviewAction, arow)
                avalues.update(owner_id=self.owner.pk, conversation_id=pk, actor_id=self.user_id(arow.get("actor")))
                self.upsert(ReviewAction, "review_actions", avalues.pop("id"), avalues)

    def version_files(self, file_id: str, number: int, files: dict[str, Any]) -> dict[str, Any]:
        storage = file_storage()
        out = {}
        for fmt, entry in files.items():
            try:
                content = self.zf.read(entry["path"])
            except (KeyError, zipfile.BadZipFile) as exc:
                raise ApplicationError(f"The archive lacks {entry.get('path')}.", code="corrupt_archive") from exc
            digest = hashlib.sha256(content).hexdigest()
            if digest != entry["sha256"]:
                raise ApplicationError(f"{entry['path']} fails its sha256 check.", code="checksum_mismatch")
            key = owned_key(self.owner.pk, "training-files", str(file_id), f"v{number}", entry["filename"])
            same = False
            if storage.exists(key):
                with storage.open(key, "rb") as fh:
                    same = hashlib.sha256(fh.read()).hexdigest() == digest
                if not same:
                    storage.delete(key)
            if not same:
                saved = storage.save(key, ContentFile(content))
                if saved != key:  # pragma: no cover - a backend that renamed the file
                    raise ApplicationError("Storage renamed a restored file.", code="storage_error")
                self.uploaded.append(key)
                self.created["version_files"] += 1
            out[fmt] = {"key": key, "filename": entry["filename"], "size": len(content), "sha256": digest}
        return out

    def training_files(self, rows: list[dict]) -> None:
        for row in rows:
            values = _decode(TrainingFile, row)
            values["owner_id"] = self.owner.pk
            pk = values.pop("id")
            current = row.get("current_version")
            existing_current = TrainingFile._base_manager.filter(pk=pk).values_list("current_version_id", flat=True)
            values["current_version_id"] = existing_current.first()
            self.upsert(TrainingFile, "training_files", pk, values)
            for vrow in row.get("versions", []):
                vvalues = _decode(TrainingFileVersion, {k: v for k, v in vrow.items() if k != "files"})
                vvalues.update(
                    owner_id=self.owner.pk,
                    training_file_id=pk,
                    created_by_id=self.user_id(vrow.get("created_by")),
                    files=self.version_files(row["id"], vrow["number"], vrow.get("files") or {}),
                )
                self.upsert(TrainingFileVersion, "training_file_versions", vvalues.pop("id"), vvalues)
            for mrow in row.get("members", []):
                mvalues = _decode(TrainingFileMember, mrow)
                mvalues.update(
                    owner_id=self.owner.pk,
                    training_file_id=pk,
                    conversation_id=_decode(Conversation, {"id": mrow["conversation"]})["id"],
                    added_by_id=self.user_id(mrow.get("added_by")),
                )
                self.upsert(TrainingFileMember, "training_file_members", mvalues.pop("id"), mvalues)
            if current:
                current_pk = _decode(TrainingFileVersion, {"id": current})["id"]
                if values["current_version_id"] != current_pk:
                    TrainingFile._base_manager.filter(pk=pk).update(current_version_id=current_pk)


def workspace_restore(*, path: str | Path, owner) -> dict[str, Any]:
    """Import the workspace archive at ``path`` for ``owner``; idempotent. Returns a summary.

    The summary: ``{"source_owner", "created", "updated", "unchanged", "conflicts", "unknown_users"}``
    with per-kind counts (missing kinds are 0).
    """
    zf, manifest = _read_archive(path)
    with zf:
        scaffolding = _read_json(zf, "scaffolding.json", lines=False)
        conversations = _read_json(zf, "conversations.jsonl", lines=True)
        training_files = _read_json(zf, "training_files.jsonl", lines=True)
        restore = _Restore(owner=owner, zf=zf)
        try:
            with transaction.atomic():
                restore.check_ids(conversations, training_files)
                restore.scaffolding(scaffolding)
                restore.conversations(conversations)
                restore.training_files(training_files)
        except (IntegrityError, KeyError, TypeError, ValueError) as exc:
            _discard(restore.uploaded)
            raise ApplicationError(f"The archive could not be restored: {exc}", code="restore_failed") from exc
        except ApplicationError:
            _discard(restore.uploaded)
            raise
    return {
        "source_owner": manifest.get("owner"),
        "exported_at": manifest.get("exported_at"),
        "created": dict(restore.created),
        "updated": dict(restore.updated),
        "unchanged": dict(restore.unchanged),
        "total_created": sum(restore.created.values()),
        "total_updated": sum(restore.updated.values()),
        "conflicts": restore.conflicts,
        "unknown_users": sorted(restore.unknown_users),
    }


def _discard(keys: list[str]) -> None:
    storage = file_storage()
    for key in keys:
        with contextlib.suppress(Exception):  # best effort: files written before the rollback
            storage.delete(key)
