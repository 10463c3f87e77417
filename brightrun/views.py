"""Project-level pages: dashboard, notifications, API tokens, health."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from brightrun import services
from brightrun.dashboard import dashboard_pipeline, dashboard_running, dashboard_spend
from brightrun.errors import ApplicationError
from brightrun.forms import ApiTokenForm
from brightrun.health import health_report
from brightrun.htmx import is_htmx, render_page
from brightrun.models import ApiToken, Notification
from brightrun.ownership import get_owned_or_404


@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    """The pipeline at a glance, this week's spend, running work and recent notifications.

    For HTMX (the running-work block polls while something runs) only the running work is read; once nothing
    runs any more, ``HX-Refresh`` reloads the page so the stage counts catch up.
    """
    user = request.user
    context = dashboard_running(user)
    if is_htmx(request):
        response = render_page(request, "brightrun/dashboard.html", "brightrun/_running_work.html", context)
        if not context["anything_running"]:
            response["HX-Refresh"] = "true"
        response["Cache-Control"] = "no-store"
        return response
    context |= {
        "pipeline": dashboard_pipeline(user),
        "spend": dashboard_spend(user),
        "recent_notifications": Notification.objects.for_user(user)[:5],
    }
    return render_page(request, "brightrun/dashboard.html", "brightrun/_running_work.html", context)


@require_GET
def notification_list(request: HttpRequest) -> HttpResponse:
    notifications = Notification.objects.for_user(request.user)
    if request.GET.get("unread") == "1":
        notifications = notifications.unread()
    context = {"notifications": notifications[:200], "only_unread": request.GET.get("unread") == "1"}
    return render_page(request, "brightrun/notification_list.html", "brightrun/_notification_rows.html", context)


@require_POST
def notification_mark_read(request: HttpRequest, pk) -> HttpResponse:
    notification = get_owned_or_404(Notification, request.user, pk=pk)
    services.notification_set_read(notification=notification, actor=request.user)
    if notification.link and request.POST.get("follow") == "1":
        return redirect(notification.link)
    return redirect("notifications:list")


@require_POST
def notification_mark_all_read(request: HttpRequest) -> HttpResponse:
    count = services.notification_mark_all_read(actor=request.user)
    messages.success(request, f"Marked {count} notification{'s' if count != 1 else ''} read.")
    return redirect("notifications:list")


@require_GET
def notification_bell(request: HttpRequest) -> HttpResponse:
    """The bell's fragment, polled by the layout so the unread count stays current."""
    response = render(request, "_partials/bell.html")
    response["Cache-Control"] = "no-store"
    return response


@require_GET
def token_list(request: HttpRequest) -> HttpResponse:
    """The user's tokens; a just-created key is shown once (kept in the session until shown)."""
    context = {
        "form": ApiTokenForm(),
        "tokens": ApiToken.objects.for_user(request.user),
        "new_key": request.session.pop("new_api_token_key", None),
    }
    response = render(request, "brightrun/token_list.html", context)
    response["Cache-Control"] = "no-store"
    return response


@require_POST
def token_create(request: HttpRequest) -> HttpResponse:
    form = ApiTokenForm(request.POST)
    if form.is_valid():
        try:
            issued = services.api_token_create(owner=request.user, name=form.cleaned_data["name"])
        except ApplicationError as exc:
            form.add_error("name", exc.message)
        else:
            request.session["new_api_token_key"] = issued.key
            messages.success(request, f"Token '{issued.token.name}' created. Copy it now: it is shown only once.")
            return redirect("accounts:tokens")
    context = {"form": form, "tokens": ApiToken.objects.for_user(request.user), "new_key": None}
    return render(request, "brightrun/token_list.html", context, status=400)


@require_POST
def token_revoke(request: HttpRequest, pk) -> HttpResponse:
    token = get_owned_or_404(ApiToken, request.user, pk=pk)
    services.api_token_revoke(token=token, actor=request.user)
    messages.success(request, f"Token '{token.name}' revoked.")
    return redirect("accounts:tokens")


@login_not_required
@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    healthy, report = health_report()
    return JsonResponse(report, status=200 if healthy else 503)
