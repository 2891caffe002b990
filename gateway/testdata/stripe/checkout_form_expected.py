#!/usr/bin/env python3
"""Prints the expected Checkout Session form bodies that test_stripe compares against.

An independent reference for gw_stripe_checkout_form: the encoding is Python's own
urllib.parse.quote(value, safe="-_.~") (RFC 3986 unreserved kept, every other UTF-8 byte %XX
in upper case, a space as %20), not a port of the C code. Keys are written with literal
brackets, in the order stripe.h documents. Regenerate with

    python3 checkout_form_expected.py > checkout-form-expected.json
"""
import json
from urllib.parse import quote

KEYS = [
    "mode",
    "line_items[0][price]",
    "line_items[0][quantity]",
    "client_reference_id",
    "success_url",
    "cancel_url",
    "customer_email",
]

ORG = "0b5e3c1e-6f1a-4c2b-9d8e-2f4a6b8c0d1e"

CASES = [
    {
        "desc": "plain values, no e-mail",
        "price_id": "price_1PQ2rs3TuVwXyZabcdEFGH12",
        "org_id": ORG,
        "success_url": "https://app.example.com/billing/success",
        "cancel_url": "https://app.example.com/billing/cancel",
        "customer_email": None,
    },
    {
        "desc": "URLs with query strings, Stripe's {CHECKOUT_SESSION_ID} template and a fragment",
        "price_id": "price_1PQ2rs3TuVwXyZabcdEFGH12",
        "org_id": ORG,
        "success_url": "https://app.example.com/billing/success?session_id={CHECKOUT_SESSION_ID}&org=" + ORG,
        "cancel_url": "https://app.example.com/billing?state=cancel&tab=plans#pricing",
        "customer_email": "ops@example.com",
    },
    {
        "desc": "spaces, plus signs and an e-mail with a subaddress",
        "price_id": "price_1PQ2rs3TuVwXyZabcdEFGH12",
        "org_id": ORG,
        "success_url": "https://app.example.com/billing/done?msg=thank you&plan=pro+annual",
        "cancel_url": "https://app.example.com/billing/cancel?reason=changed my mind",
        "customer_email": "ops+billing@example.com",
    },
    {
        "desc": "unicode: accented Latin, a check mark (3 bytes) and an emoji (4 bytes)",
        "price_id": "price_1PQ2rs3TuVwXyZabcdEFGH12",
        "org_id": ORG,
        "success_url": "https://app.example.com/café/ünïcode?q=✓&note=paid 😀",
        "cancel_url": "https://app.example.com/zurück",
        "customer_email": "andré@exämple.com",
    },
    {
        "desc": "every reserved and awkward ASCII character, unreserved ones kept",
        "price_id": "price_-_.~",
        "org_id": ORG,
        "success_url": "https://app.example.com/p;a=b/c:d@e?x=!*'()$,/?#[]%25&y=\"<>\\^`{|}",
        "cancel_url": "https://app.example.com/AZaz09-._~",
        "customer_email": None,
    },
    {
        "desc": "control characters (tab, newline, DEL) and percent signs",
        "price_id": "price_1PQ2rs3TuVwXyZabcdEFGH12",
        "org_id": "org\twith\ncontrols\x7f",
        "success_url": "https://app.example.com/100%?discount=50%off",
        "cancel_url": "https://app.example.com/%2F",
        "customer_email": "a@b.c",
    },
    {
        "desc": "every printable ASCII character (0x20 to 0x7e) in one value",
        "price_id": "price_1PQ2rs3TuVwXyZabcdEFGH12",
        "org_id": ORG,
        "success_url": "https://app.example.com/ok",
        "cancel_url": "".join(chr(c) for c in range(0x20, 0x7F)),
        "customer_email": None,
    },
]


def body(case):
    values = [
        "subscription",
        case["price_id"],
        "1",
        case["org_id"],
        case["success_url"],
        case["cancel_url"],
        case["customer_email"],
    ]
    pairs = []
    for key, value in zip(KEYS, values):
        if value is None:
            continue
        pairs.append(key + "=" + quote(value, safe="-_.~"))
    return "&".join(pairs)


def main():
    out = {
        "description": "Expected gw_stripe_checkout_form bodies, computed by checkout_form_expected.py "
        "with urllib.parse.quote(value, safe=\"-_.~\"); customer_email null means the argument is NULL "
        "and the pair is omitted.",
        "cases": [dict(case, body=body(case)) for case in CASES],
    }
    print(json.dumps(out, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
