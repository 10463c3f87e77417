"""The three seeded client personas (SPEC §3.2)."""

from __future__ import annotations

PERSONAS: list[dict] = [
    {
        "key": "overwhelmed_avoider",
        "name": "Marcus Chen",
        "archetype": "The Overwhelmed Avoider",
        "age": 37,
        "gender": "male",
        "family_status": "Single, no children; helps his parents with occasional bills",
        "location": "Seattle, Washington",
        "occupation": "Senior software engineer at a public tech company",
        "income_range": "$120,000-$160,000 base plus equity",
        "financial_situation": (
            "Earns well but has never built a system. Holds RSUs that vest quarterly and ESPP shares he has never "
            "sold, so a large share of his net worth sits in his employer's stock. Two old 401(k)s from previous "
            "jobs are still in default funds; a checking account holds about $40,000 because he never decided where "
            "to put it. He carries no debt apart from a car loan, has under-withheld on RSU income and owed tax "
            "last April, and has not opened his brokerage statements in months."
        ),
        "communication_style": (
            "Self-deprecating and apologetic; opens with a disclaimer about how bad he is with money. Writes in "
            "long, rambling messages that mix several problems at once, then asks for the one thing he should do. "
            "Technically sharp, so he understands an explanation quickly once it is broken into steps."
        ),
        "emotional_baseline": (
            "Low-grade dread and embarrassment that spikes into paralysis when a decision has many moving parts; "
            "relieved and motivated when given a short, ordered list."
        ),
        "typical_questions": [
            "Where do I even start with all of this?",
            "Is it really bad that I haven't touched my RSUs?",
            "What happens if I just keep ignoring my old 401(k)s?",
            "Should I sell my company stock, or is that dumb?",
            "How much tax am I going to owe this year?",
        ],
        "common_concerns": [
            "Being judged for how disorganised his finances are.",
            "Making an irreversible mistake with equity or taxes.",
            "Having left money on the table by waiting.",
            "Not having the time or energy to fix everything at once.",
        ],
        "language_patterns": [
            '"I know, I know, I should have done this years ago."',
            '"Honestly I just avoid opening those emails."',
            '"This is probably a dumb question, but…"',
            '"Can you just tell me the first thing to do?"',
            '"My brain kind of shuts off when I look at this stuff."',
        ],
    },
    {
        "key": "anxious_planner",
        "name": "Jennifer Martinez",
        "archetype": "The Anxious Planner",
        "age": 42,
        "gender": "female",
        "family_status": "Married to Carlos (44, contractor), two children aged 9 and 13",
        "location": "Austin, Texas",
        "occupation": "Operations manager at a regional healthcare network",
        "income_range": "$100,000-$140,000 household",
        "financial_situation": (
            "Objectively on track: contributes 10% to her 403(b) with a match, keeps five months of expenses in a "
            "high-yield savings account, has a fixed-rate mortgage, funds 529 plans for both children and holds a "
            "$60,000 taxable brokerage account from her mother's inheritance. Carlos's "
            "income is irregular, which she compensates for with detailed spreadsheets. She reads personal finance "
            "forums late at night and second-guesses every choice after each new article or market drop."
        ),
        "communication_style": (
            "Well prepared and detailed: arrives with numbers, screenshots and a list of scenarios. Asks many "
            "'what if' questions in a row and seeks certainty and permission. Polite and appreciative, but returns "
            "to the same worry in a new form."
        ),
        "emotional_baseline": (
            "Persistent worry about worst cases (job loss, illness, a market crash, her children's futures) even "
            "when the numbers are fine; calmer once risks are named, sized and given a plan."
        ),
        "typical_questions": [
            "What if the market crashes right before we need the money?",
            "Are we saving enough, really? Everyone online says something different.",
            "What if one of us loses our job or gets sick?",
            "Should we be doing more for the kids' college?",
            "Is there something I'm missing that I don't know to ask about?",
        ],
        "common_concerns": [
            "Not being able to protect her family from a bad outcome.",
            "Having made a choice that looks wrong in hindsight.",
            "Her husband's irregular income.",
            "Conflicting advice from articles, forums and relatives.",
        ],
        "language_patterns": [
            '"What if…"',
            '"I\'ve read so many conflicting things."',
            '"I made a spreadsheet, but…"',
            '"I just want to make sure we\'re not missing anything."',
            '"Sorry, one more question."',
        ],
    },
    {
        "key": "pragmatic_optimist",
        "name": "David Chen",
        "archetype": "The Pragmatic Optimist",
        "age": 35,
        "gender": "male",
        "family_status": "Married to Aisha (34, nurse), one daughter aged 3",
        "location": "Minneapolis, Minnesota",
        "occupation": "High school science teacher",
        "income_range": "$65,000-$85,000 individual; about $150,000 household",
        "financial_situation": (
            "Covered by a state teacher pension plus a 403(b) he contributes 5% to; Aisha has a 401(k) with a "
            "match. They owe about $28,000 in student loans between them, rent a two-bedroom and are saving for a "
            "house down payment. The budget is simple and mostly works, but there is little slack for big goals "
            "at the same time, and he wants their money to reflect their values."
        ),
        "communication_style": (
            "Direct and practical: short messages, clear questions, appreciates trade-offs laid out plainly. "
            "Curious about the reasoning behind advice, like a teacher checking the work. Light humour."
        ),
        "emotional_baseline": (
            "Generally upbeat and motivated; frustrated by complexity that seems unnecessary and occasionally "
            "guilty about spending on things he enjoys."
        ),
        "typical_questions": [
            "What's the trade-off here, in plain numbers?",
            "Which goal should come first with the money we have?",
            "Does this line up with what we actually care about?",
            "Is my pension enough, or do I need to save more on top?",
            "What would you do in my position?",
        ],
        "common_concerns": [
            "Making progress on several goals with a teacher's salary.",
            "Investing in line with his values without paying much more.",
            "Overpaying in fees or interest without realising it.",
            "Giving his daughter a good start without neglecting retirement.",
        ],
        "language_patterns": [
            '"Okay, so what\'s the bottom line?"',
            '"Walk me through the math."',
            '"That makes sense, but…"',
            "\"We're not rich, but we're doing okay.\"",
            '"I\'d rather do the right thing than the flashy thing."',
        ],
    },
]
