"""The ten seeded emotional arcs (SPEC §3.3). Intensities, turn ranges, complexity and tier
are the SPEC's table; the rest is written for this product."""

from __future__ import annotations

ARCS: list[dict] = [
    {
        "key": "confusion_to_clarity",
        "name": "Confusion → Clarity",
        "starting_emotion": "confusion",
        "ending_emotion": "clarity",
        "start_intensity_min": 0.70,
        "start_intensity_max": 0.85,
        "end_intensity_min": 0.70,
        "end_intensity_max": 0.80,
        "typical_turns_min": 3,
        "typical_turns_max": 5,
        "complexity": 7,
        "tier": "template",
        "strategy": (
            "Normalise the confusion, find the one question underneath the tangle, and build understanding in "
            "small steps with the client's own numbers until they can explain the decision back in their words."
        ),
        "key_principles": [
            "Confusion is a sign the topic is badly explained, not that the client is slow.",
            "Find the real question before answering any of the surface ones.",
            "One concept per turn, anchored in a concrete example.",
            "Check understanding by inviting the client to restate or apply the idea.",
        ],
        "characteristic_phrases": [
            "This trips up a lot of smart people, and it's not you.",
            "Let's set the jargon aside for a minute.",
            "Can I show you with your own numbers?",
            "Tell me how that lands for you.",
        ],
        "response_techniques": [
            "Reflect the confusion back in plain words before explaining.",
            "Separate the tangle into two or three distinct questions and pick one.",
            "Use an everyday analogy, then a small worked example.",
            "Ask a check-for-understanding question before adding the next layer.",
        ],
        "avoid_tactics": [
            "Explaining everything at once.",
            "Unexplained acronyms or product names.",
            "Phrases like 'it's simple' or 'obviously'.",
            "Answering a question the client did not ask.",
        ],
        "suitable_personas": [],
        "suitable_topics": [],
    },
    {
        "key": "shame_to_acceptance",
        "name": "Shame → Acceptance",
        "starting_emotion": "shame",
        "ending_emotion": "acceptance",
        "start_intensity_min": 0.70,
        "start_intensity_max": 0.90,
        "end_intensity_min": 0.55,
        "end_intensity_max": 0.70,
        "typical_turns_min": 4,
        "typical_turns_max": 5,
        "complexity": 8,
        "tier": "template",
        "strategy": (
            "Meet the confession with warmth, separate what happened from who the client is, and shift attention "
            "from the past to the workable present: acceptance means the client can look at the numbers without "
            "flinching, not that everything is solved."
        ),
        "key_principles": [
            "Receive the disclosure without any sign of judgment.",
            "Normalise explicitly: say how common the situation is.",
            "Separate behaviour from identity.",
            "Move from blame about the past to choices about the present.",
        ],
        "characteristic_phrases": [
            "Thank you for telling me; that took courage.",
            "You are far from the only person in this spot.",
            "What happened is information, not a verdict on you.",
            "Let's look at where things stand today.",
        ],
        "response_techniques": [
            "Thank the client for the disclosure before anything else.",
            "Name the shame gently and gauge how heavy it feels.",
            "Reframe past decisions as understandable given the circumstances.",
            "Invite one small, low-risk step that rebuilds a sense of control.",
        ],
        "avoid_tactics": [
            "Any 'you should have' or 'why didn't you' language.",
            "Rushing to solutions before the client feels heard.",
            "Minimising the feeling ('it's no big deal').",
            "Lecturing about financial rules.",
        ],
        "suitable_personas": [],
        "suitable_topics": [],
    },
    {
        "key": "couple_conflict_to_alignment",
        "name": "Couple Conflict → Alignment",
        "starting_emotion": "frustration",
        "ending_emotion": "clarity",
        "start_intensity_min": 0.65,
        "start_intensity_max": 0.80,
        "end_intensity_min": 0.75,
        "end_intensity_max": 0.85,
        "typical_turns_min": 3,
        "typical_turns_max": 4,
        "complexity": 7,
        "tier": "template",
        "strategy": (
            "Stay neutral between the partners, translate the positions into the values underneath them, and find "
            "the goal both share so the couple can agree on a process even before they agree on the answer."
        ),
        "key_principles": [
            "Never take sides; both partners' concerns are legitimate.",
            "Positions hide values; surface the values.",
            "Shared goals first, then the trade-offs between them.",
            "Agreeing on how to decide matters as much as the decision.",
        ],
        "characteristic_phrases": [
            "It sounds like you both care about the same thing from different angles.",
            "What would your partner say matters most to them here?",
            "Neither of you is wrong; you're weighing different risks.",
            "What if you tried this together for three months?",
        ],
        "response_techniques": [
            "Restate each partner's view fairly, in neutral words.",
            "Ask what each position protects (security, freedom, family, fairness).",
            "Propose a shared framework such as a split or a trial period.",
            "Suggest a specific conversation for the couple to have at home.",
        ],
        "avoid_tactics": [
            "Siding with the partner who is in the conversation.",
            "Labelling either partner as the spender or the saver.",
            "Solving the money question while ignoring the relationship tension.",
            "Speculating about the absent partner's motives.",
        ],
        "suitable_personas": ["anxious_planner", "pragmatic_optimist"],
        "suitable_topics": [],
    },
    {
        "key": "fear_to_confidence",
        "name": "Fear → Confidence",
        "starting_emotion": "fear",
        "ending_emotion": "confidence",
        "start_intensity_min": 0.75,
        "start_intensity_max": 0.90,
        "end_intensity_min": 0.65,
        "end_intensity_max": 0.80,
        "typical_turns_min": 4,
        "typical_turns_max": 6,
        "complexity": 8,
        "tier": "template",
        "strategy": (
            "Take the fear seriously, give the vague threat a name and a size, and show what protects against it; "
            "confidence comes from the client seeing their own margin of safety and having a plan for the bad case."
        ),
        "key_principles": [
            "Fear is a signal worth listening to, not an overreaction to correct.",
            "A named, measured risk is less frightening than a vague one.",
            "Plans for the bad case create calm in the good case.",
            "Confidence belongs to the client; the consultant points to evidence they already have.",
        ],
        "characteristic_phrases": [
            "That worry makes complete sense.",
            "Let's put a number on it.",
            "Here's what would have to happen for that to hurt you.",
            "You've already built more protection than you think.",
        ],
        "response_techniques": [
            "Validate the fear and ask what exactly the client pictures happening.",
            "Quantify the scenario with the client's numbers.",
            "Point to existing buffers such as savings, insurance or time horizon.",
            "Co-create a short 'if this happens, we do that' plan.",
        ],
        "avoid_tactics": [
            "Dismissive reassurance ('don't worry about it').",
            "Guarantees about markets or outcomes.",
            "Overloading with statistics.",
            "Pushing a decision while the client is still frightened.",
        ],
        "suitable_personas": [],
        "suitable_topics": [],
    },
    {
        "key": "overwhelm_to_empowerment",
        "name": "Overwhelm → Empowerment",
        "starting_emotion": "overwhelm",
        "ending_emotion": "empowerment",
        "start_intensity_min": 0.70,
        "start_intensity_max": 0.85,
        "end_intensity_min": 0.70,
        "end_intensity_max": 0.85,
        "typical_turns_min": 3,
        "typical_turns_max": 5,
        "complexity": 7,
        "tier": "template",
        "strategy": (
            "Slow everything down, get the whole pile out where it can be seen, then sort it by urgency and impact "
            "until the client chooses their own first move; empowerment means they own the order, not just a to-do "
            "list."
        ),
        "key_principles": [
            "Overwhelm comes from too many open loops, not from a lack of ability.",
            "Seeing the whole list makes it smaller.",
            "Sequence beats simultaneity.",
            "The client chooses; the consultant organises.",
        ],
        "characteristic_phrases": [
            "Let's get it all out on the table first.",
            "Not all of these are urgent, even if they feel that way.",
            "Which of these would take the most weight off if it were done?",
            "You just turned a mess into a plan.",
        ],
        "response_techniques": [
            "Acknowledge the weight before adding anything new.",
            "Externalise: list the items back to the client.",
            "Sort by deadline, money at stake and effort.",
            "Let the client pick the first step and set a date for it.",
        ],
        "avoid_tactics": [
            "Adding new tasks or concepts early in the conversation.",
            "Long explanations while the client is flooded.",
            "Implying the client should have handled this sooner.",
            "Deciding the priorities for them.",
        ],
        "suitable_personas": [],
        "suitable_topics": [],
    },
    {
        "key": "guilt_to_permission",
        "name": "Guilt → Permission",
        "starting_emotion": "guilt",
        "ending_emotion": "permission",
        "start_intensity_min": 0.65,
        "start_intensity_max": 0.80,
        "end_intensity_min": 0.60,
        "end_intensity_max": 0.75,
        "typical_turns_min": 3,
        "typical_turns_max": 5,
        "complexity": 7,
        "tier": "template",
        "strategy": (
            "Explore where the guilt comes from, test it against the client's actual numbers and values, and help "
            "them give themselves permission for a choice that fits their goals, with guardrails that keep the "
            "important things safe."
        ),
        "key_principles": [
            "Spending on what you value is part of a plan, not a failure of one.",
            "Guilt often comes from someone else's rule.",
            "Guardrails turn 'should I?' into 'how much?'.",
            "Permission is given by the client, with the consultant's evidence behind it.",
        ],
        "characteristic_phrases": [
            "Whose voice is that 'should' in?",
            "Let's check whether this actually threatens your goals.",
            "A plan that leaves no room for joy usually doesn't last.",
            "What would a guilt-free amount look like?",
        ],
        "response_techniques": [
            "Name the guilt and ask where the rule behind it comes from.",
            "Run the numbers on the choice against the client's priorities.",
            "Propose a guardrail such as a cap, a sinking fund or an order of priorities.",
            "Invite the client to state the decision in their own words.",
        ],
        "avoid_tactics": [
            "Encouraging spending that endangers essentials or debts in collections.",
            "Moralising about wants versus needs.",
            "Dismissing the guilt before understanding it.",
            "Making the decision for the client.",
        ],
        "suitable_personas": [],
        "suitable_topics": [],
    },
    {
        "key": "frustration_to_relief",
        "name": "Frustration → Relief",
        "starting_emotion": "frustration",
        "ending_emotion": "relief",
        "start_intensity_min": 0.60,
        "start_intensity_max": 0.75,
        "end_intensity_min": 0.65,
        "end_intensity_max": 0.80,
        "typical_turns_min": 2,
        "typical_turns_max": 4,
        "complexity": 6,
        "tier": "template",
        "strategy": (
            "Let the client vent briefly, agree where the system really is frustrating, then cut straight to the "
            "practical fix; relief comes from a concrete answer delivered quickly and without fuss."
        ),
        "key_principles": [
            "Frustration is often justified; say so.",
            "Short conversations deserve short, useful answers.",
            "Practical next steps relieve more than explanations do.",
            "Respect the client's time.",
        ],
        "characteristic_phrases": [
            "You're right, that is needlessly confusing.",
            "Here's the short version.",
            "The fix is simpler than the paperwork makes it look.",
            "That should take about twenty minutes, once.",
        ],
        "response_techniques": [
            "Validate the frustration in one sentence.",
            "Give the direct answer first, then the reason.",
            "Break the fix into two or three concrete actions.",
            "Confirm it is resolved or name the one remaining piece.",
        ],
        "avoid_tactics": [
            "Long background explanations before the answer.",
            "Defending the institution that caused the frustration.",
            "Adding unrelated advice.",
            "Over-empathising until the response loses its point.",
        ],
        "suitable_personas": [],
        "suitable_topics": [],
    },
    {
        "key": "crisis_to_referral",
        "name": "Crisis → Referral",
        "starting_emotion": "despair",
        "ending_emotion": "referred",
        "start_intensity_min": 0.80,
        "start_intensity_max": 1.00,
        "end_intensity_min": 0.30,
        "end_intensity_max": 0.50,
        "typical_turns_min": 4,
        "typical_turns_max": 6,
        "complexity": 10,
        "tier": "edge_case",
        "strategy": (
            "Safety first. When the client signals hopelessness or thoughts of self-harm, the consultant sets the "
            "money topic aside, responds with calm care, asks directly about safety, and connects the client with "
            "the 988 Suicide & Crisis Lifeline or emergency services. No financial advice is given during the "
            "crisis; the conversation ends with the client connected to help and a gentle promise that the money "
            "questions can wait."
        ),
        "key_principles": [
            "The person's safety outranks every financial question.",
            "No financial advice, analysis or problem-solving during a crisis.",
            "Ask directly and calmly about safety; asking does not plant ideas.",
            "Refer to trained help (988, emergency services) and stay present while doing so.",
        ],
        "characteristic_phrases": [
            "I'm really glad you told me.",
            "The money can wait; you matter more right now.",
            "Are you thinking about hurting yourself?",
            "You can call or text 988 right now and talk to someone trained for exactly this.",
            "I'll be here when you're ready to come back to the numbers.",
        ],
        "response_techniques": [
            "Pause the financial topic explicitly and say why.",
            "Reflect the despair without arguing with it.",
            "Ask one direct safety question and respond to the answer.",
            "Give the 988 Lifeline (call or text) and emergency services clearly.",
            "Encourage reaching a trusted person now; close with warmth, not a task list.",
        ],
        "avoid_tactics": [
            "Any financial advice, calculations or plans during the crisis.",
            "Minimising ('it's only money', 'it'll be fine').",
            "Acting as a therapist or continuing as if nothing was said.",
            "Panic, lecturing or long paragraphs.",
            "Ending the conversation abruptly without a referral.",
        ],
        # Despair is most plausible for the avoider and the anxious planner, and around money
        # problems that threaten a livelihood or a relationship, not optimisation topics.
        "suitable_personas": ["overwhelmed_avoider", "anxious_planner"],
        "suitable_topics": [
            "career_change_income_reduction",
            "vacation_vs_debt_payoff",
            "spending_priorities",
            "mortgage_payoff_strategy",
            "student_loan_payoff",
            "eldercare_costs",
            "stay_home_parent_finances",
            "long_term_care",
            "financial_organization",
            "hiding_financial_problems",
        ],
    },
    {
        "key": "hostility_to_boundary",
        "name": "Hostility → Boundary",
        "starting_emotion": "anger",
        "ending_emotion": "acceptance",
        "start_intensity_min": 0.70,
        "start_intensity_max": 1.00,
        "end_intensity_min": 0.30,
        "end_intensity_max": 0.60,
        "typical_turns_min": 4,
        "typical_turns_max": 8,
        "complexity": 9,
        "tier": "edge_case",
        "strategy": (
            "Stay calm and non-defensive, acknowledge the frustration underneath the hostility, and set clear, "
            "respectful limits on abusive language or unreasonable demands (guarantees, blame, advice outside the "
            "consultant's role); the client ends up accepting the boundary, even if not happily, and the "
            "conversation can continue on workable terms."
        ),
        "key_principles": [
            "Anger usually protects something: fear, loss or feeling ignored.",
            "Calm is contagious; the consultant never matches the client's heat.",
            "Boundaries are stated once, clearly, without lecturing.",
            "Respect is offered even when the limit stands.",
        ],
        "characteristic_phrases": [
            "I can hear how angry you are, and I want to help.",
            "I'm not able to promise that, and here's why.",
            "I'm glad to keep going, and I need us to keep it respectful.",
            "What would be most useful to you right now?",
        ],
        "response_techniques": [
            "Acknowledge the feeling and the legitimate part of the complaint.",
            "Restate what the consultant can and cannot do.",
            "Name the boundary on language or demands once, calmly.",
            "Offer a concrete way forward within the boundary.",
        ],
        "avoid_tactics": [
            "Defensiveness, sarcasm or arguing about who is right.",
            "Giving in to demands for guarantees or out-of-scope advice.",
            "Threatening to end the conversation as a first move.",
            "Over-apologising for things outside the consultant's control.",
        ],
        "suitable_personas": [],
        "suitable_topics": [],
    },
    {
        "key": "overwhelm_to_triage",
        "name": "Overwhelm → Triage",
        "starting_emotion": "panic",
        "ending_emotion": "focused",
        "start_intensity_min": 0.80,
        "start_intensity_max": 1.00,
        "end_intensity_min": 0.40,
        "end_intensity_max": 0.60,
        "typical_turns_min": 5,
        "typical_turns_max": 8,
        "complexity": 8,
        "tier": "edge_case",
        "strategy": (
            "The client is in acute panic about several urgent problems at once. The consultant steadies them, "
            "separates true emergencies from things that only feel urgent, and ends on exactly one next step the "
            "client can take in the next 24 hours; everything else is explicitly parked."
        ),
        "key_principles": [
            "In a panic, fewer words and shorter sentences.",
            "Triage: what has a real deadline in the next days?",
            "Exactly one next step; everything else waits, on purpose.",
            "Name what can safely wait so the client can let go of it.",
        ],
        "characteristic_phrases": [
            "Let's take a breath; we're going to do this one piece at a time.",
            "What has a deadline this week?",
            "That one can wait, and I'll tell you why.",
            "Your one job for tomorrow is this.",
        ],
        "response_techniques": [
            "Slow the pace with short, steady sentences.",
            "Ask for deadlines and consequences, not feelings about every item.",
            "Sort into 'today', 'this month' and 'parked'.",
            "Close with a single concrete action, a time to do it and a reason it comes first.",
        ],
        "avoid_tactics": [
            "Giving more than one next step.",
            "Full financial plans or long explanations.",
            "Treating every item as equally urgent.",
            "Reassurance that skips over a real deadline.",
        ],
        "suitable_personas": [],
        "suitable_topics": [],
    },
]
