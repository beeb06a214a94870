"""Redaction of secrets in screen text: real-looking screens, positives and negatives.

Token-shaped test values are made at run time from a seeded generator, so the repository holds nothing a
secret scanner would flag; payment cards are the networks' published test numbers.
"""

from __future__ import annotations

import random
import re
import string
import time

import pytest

from agent import config
from agent.text.blocks import blocks
from agent.text.redact import Redactor, compile_patterns, luhn
from encoders.records import TextLine

B64 = string.ascii_letters + string.digits
rng = random.Random(15)


def fake(prefix: str, n: int, alphabet: str = B64) -> str:
    return prefix + "".join(rng.choice(alphabet) for _ in range(n))


AKIA = fake("AKIA", 16, string.ascii_uppercase + string.digits)
AWS_SECRET = fake("", 40, B64 + "+/")
GHP = fake("ghp_", 36)
SK = fake("sk-proj-", 48, B64 + "-_")
BEARER = fake("", 40, B64 + "-_.")
DB_PW = fake("", 14)
JWT = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9." + fake("eyJ", 40, B64) + "." + fake("", 43, B64 + "-_")
PEM_BODY = [fake("", 64, B64 + "+/") for _ in range(3)] + [fake("", 20, B64) + "=="]

TERMINAL = f"""me@laptop:~/src/app$ git log --oneline -1
3f2a9c1e5b7d4a6f8e0c2b4d6f8a0c2e4b6d8f0a fix retry on 503 (#1234)
me@laptop:~/src/app$ cat .env
DATABASE_URL=postgres://app:{DB_PW}@db.internal:5432/app
AWS_ACCESS_KEY_ID={AKIA}
AWS_SECRET_ACCESS_KEY={AWS_SECRET}
OPENAI_API_KEY={SK}
GITHUB_TOKEN={GHP}
me@laptop:~/src/app$ curl -s -H "Authorization: Bearer {BEARER}" https://api.example.com/v1/me
{{"id": 42, "name": "Ada", "plan": "pro", "session": "{JWT}"}}
me@laptop:~/src/app$ cat ~/.ssh/id_ed25519
-----BEGIN OPENSSH PRIVATE KEY-----
{chr(10).join(PEM_BODY)}
-----END OPENSSH PRIVATE KEY-----
me@laptop:~/src/app$ ls ~/.cache/huggingface/hub/models--sentence-transformers--all-MiniLM-L6-v2/snapshots
c9745ed1d9f207416be6d2e6f8de32d1f16199bf
me@laptop:~/src/app$ echo $PWD
/home/me/src/app"""

SECRETS = [DB_PW, AKIA, AWS_SECRET, SK, GHP, BEARER, JWT, *PEM_BODY]
KEPT = [0, 1, 2, 10, -4, -3, -2, -1]  # the terminal's lines that hold no secret


def test_a_terminal_with_leaked_keys_keeps_everything_but_the_keys():
    out, counts = Redactor().redact(TERMINAL)
    for s in SECRETS:
        assert s not in out
    assert "PRIVATE KEY" not in out
    want = {"secret": 2, "aws-key": 1, "api-key": 1, "github-token": 1, "bearer": 1, "jwt": 1, "private-key": 1}
    assert counts == want, counts  # AWS_SECRET_ACCESS_KEY and the URL's password are the two "secret"s
    lines, got = TERMINAL.split("\n"), out.split("\n")
    for i in KEPT:
        assert lines[i] in got, lines[i]  # prompts, the commit, the snapshot hash, the path stay word for word
    assert "DATABASE_URL=postgres://app:[redacted:secret]@db.internal:5432/app" in got
    assert "AWS_ACCESS_KEY_ID=[redacted:aws-key]" in got
    assert 'curl -s -H "Authorization: Bearer [redacted:bearer]" https://api.example.com/v1/me' in out


def test_a_private_key_block_is_one_finding():
    text = "-----BEGIN RSA PRIVATE KEY-----\n" + "\n".join(PEM_BODY) + "\n-----END RSA PRIVATE KEY-----\nafter"
    out, c = Redactor().redact(text)
    assert out == "\n".join(["[redacted:private-key]"] * (len(PEM_BODY) + 2) + ["after"])  # a marker per line
    assert c == {"private-key": 1}


def test_an_ocr_read_begin_line_without_its_end_hides_the_rest_of_the_line_and_the_base64_after_it():
    body = f"{PEM_BODY[0][:30]}\n{PEM_BODY[1]}\n{PEM_BODY[2][:20]}"
    text = f"$ cat key.pem\n----BEGIN PRIVATE KEY---- {body}\n$ echo done"
    out, c = Redactor().redact(text)
    assert out == "$ cat key.pem\n" + "[redacted:private-key]\n" * 3 + "$ echo done", out
    assert c == {"private-key": 1}


INVOICE = """ACME Supplies Ltd                      INVOICE INV-2024-000123
Date: 2024-03-15        Due: 2024-04-14        Customer no. 4000 1234 5678
Bill to: Ada Lovelace, 12 Analytical Way, London, +44 20 7946 0958
Order 100234567890123 placed 1710460800000
Qty  Item                 Unit     Total
2    USB-C cable 2m       9.99     19.98
1    Keyboard             79.00    79.00
Subtotal 98.98   VAT 19.80   Total EUR 118.78
Paid with Visa 4242 4242 4242 4242 (exp 04/27)
Card on file: 5555-5555-5555-4444
Reference 4242 4242 4242 4241 / 0000 0000 0000 0000"""


def test_an_invoice_loses_its_card_numbers_and_nothing_else():
    out, counts = Redactor().redact(INVOICE)
    assert counts == {"card": 2}, counts
    assert "Paid with Visa [redacted:card] (exp 04/27)" in out
    assert "Card on file: [redacted:card]" in out
    want = INVOICE.replace("4242 4242 4242 4242", "[redacted:card]").replace("5555-5555-5555-4444", "[redacted:card]")
    assert out == want  # non-Luhn and all-zero numbers, dates, phone, order and invoice numbers stay


@pytest.mark.parametrize(
    "card",
    [
        "4111111111111111",
        "4111 1111 1111 1111",
        "4111-1111-1111-1111",
        "3782 822463 10005",
        "6011000990139424",
        "5105105105105100",
        "4222222222222",
        "3056 930902 5904",
    ],
)
def test_cards_that_pass_luhn_are_redacted(card):
    assert luhn(re.sub(r"\D", "", card))
    out, c = Redactor().redact(f"card {card}, thanks")
    assert out == "card [redacted:card], thanks" and c == {"card": 1}


@pytest.mark.parametrize(
    "text",
    [
        "4111 1111 1111 1112",  # Luhn fails
        "1111 1111 1111 1117",  # Luhn passes, but no card network starts with 1 (timestamps, order numbers)
        "41111111111111111111",  # 20 digits
        "4111 1111 1111",  # 12 digits
        "41 11 11 11 11 11 11 11",  # not grouped like a card
        "ISBN 978-3-16-148410-0, call +1 (415) 555-0123, 2024-03-15T10:20:30Z",
        "v4111111111111111",  # part of a word
    ],
)
def test_numbers_that_are_not_cards_stay(text):
    assert Redactor().redact(text) == (text, {})


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        (f"key {fake('ASIA', 16, string.ascii_uppercase + string.digits)} expires", "aws-key"),
        (f"{fake('gho_', 36)}", "github-token"),
        (f"{fake('ghs_', 36)}", "github-token"),
        (f"{fake('github_pat_', 82, B64 + '_')}", "github-token"),
        (f"remote {fake('glpat-', 20, B64 + '-_')} ok", "gitlab-token"),
        (f"{fake('xoxb-', 40, string.digits + '-')}", "slack-token"),
        (f"{fake('xoxp-', 40, B64 + '-')}", "slack-token"),
        (f"{fake('sk-ant-api03-', 90, B64 + '-_')}", "api-key"),
        (f"{fake('sk-', 48)}", "api-key"),
        (f"maps {fake('AIza', 35, B64 + '-_')}", "google-key"),
        (f"{fake('sk_live_', 24)}", "stripe-key"),
        (f"{fake('rk_live_', 24)}", "stripe-key"),
        (f"Cookie: token {JWT}", "jwt"),
        (f"bearer {BEARER}", "bearer"),
        ("password: hunter2", "secret"),
        ("Password = correct-horse", "secret"),
        ('"client_secret": "s3cr3t value"', "secret"),
        ("x-api-key: 12345abcde", "secret"),
        ("passwd hunter2 := nope; pwd: abc123", "secret"),
        ("password: P@ss(w0rd]", "secret"),
        ("https://cdn.example.com/f.zip?sig=" + fake("", 40), "random"),
        ("blob " + fake("", 48, B64 + "+/") + "==", "random"),
        ("key " + fake("", 32, "0123456789abcdef"), "random"),  # 32 hex: API keys look like this (md5 too)
    ],
)
def test_each_detector_finds_its_kind(text, kind):
    out, counts = Redactor().redact(text)
    assert counts[kind] >= 1 and f"[redacted:{kind}]" in out, (out, counts)


@pytest.mark.parametrize(
    "text",
    [
        "The bearer of this letter is a secret agent; tokens: 1500, max_tokens: 4096.",
        "Forgot your password? Reset it from the sign-in page.",
        "Password: ********",
        "password: <your password here>",
        "PWD=/home/me/src/app OLDPWD=/home/me",
        "commit 3f2a9c1e5b7d4a6f8e0c2b4d6f8a0c2e4b6d8f0a",
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "id 123e4567-e89b-12d3-a456-426614174000",
        "https://drive.google.com/file/d/1aBcD3fGhIjKlMnOpQrStUvWxYz012345/view?usp=sharing",
        "/home/me/.cache/huggingface/hub/models--sentence-transformers--all-MiniLM-L6-v2/snapshots/c9745ed1",
        "AbstractSingletonProxyFactoryBean and HTMLElement2DContext3DRenderingPipelineFactory",
        "test_e2e_screen_cat_on_screen_is_published_and_stored_in_chroma",
        "Pneumonoultramicroscopicsilicovolcanoconiosis is a long word",
        "================================================================",
        "task-runner-2024-01-15-nightly-build-artifacts-and-logs",
        "sk-learn-compatible-estimator-interface",
        "[redacted:card] and token: [redacted:jwt]",
    ],
)
def test_prose_paths_urls_hashes_and_identifiers_stay(text):
    assert Redactor().redact(text) == (text, {})


def test_lines_redact_as_they_do_alone():
    """Detectors stop at a line's end: the joined block equals its lines one by one (PEM aside)."""
    r = Redactor()
    text = TERMINAL.split("-----BEGIN")[0] + INVOICE
    one_by_one = [r.redact(line) for line in text.split("\n")]
    out, counts = r.redact(text)
    assert out == "\n".join(o for o, _ in one_by_one)
    assert counts == sum((c for _, c in one_by_one), start=type(counts)())


def test_user_patterns_run_first_and_count_as_custom():
    r = Redactor([r"\bACME-\d{6}\b", "(?i)project nightingale"])
    out, counts = r.redact("ACME-123456 for Project Nightingale, password: x1")
    assert out == "[redacted:custom] for [redacted:custom], password: [redacted:secret]"
    assert counts == {"custom": 2, "secret": 1}
    only = Redactor([r"\bACME-\d{6}\b"], builtin=False)
    assert only.redact("ACME-123456 password: x1") == ("[redacted:custom] password: x1", {"custom": 1})


@pytest.mark.parametrize(
    ("patterns", "message"),
    [
        (["ok", "(unclosed"], "'redact.patterns'[1] '(unclosed' is not a valid regular expression"),
        ([""], "'redact.patterns'[0] must be a non-empty"),
        (["a*"], "'redact.patterns'[0] 'a*' matches the empty string"),
        ([3], "'redact.patterns'[0] must be a non-empty regular expression string, got 3"),
    ],
)
def test_bad_user_patterns_are_named(patterns, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        compile_patterns(patterns)


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("patterns = ['(?P<x']", "'redact.patterns'[0] '(?P<x' is not a valid regular expression"),
        ("patterns = 'secret'", "'redact.patterns' must be list, got str"),
        ("enabled = 'yes'", "'redact.enabled' must be bool"),
        ("colour = 1", "unknown key 'redact.colour'"),
    ],
)
def test_config_errors_name_the_key(tmp_path, toml, message):
    path = tmp_path / "c.toml"
    path.write_text(f"[redact]\n{toml}\n")
    with pytest.raises(config.ConfigError, match=re.escape(message)):
        config.load(path)


def test_config_defaults_and_user_patterns(tmp_path):
    assert config.load().redact == config.RedactCfg(enabled=True, patterns=())
    path = tmp_path / "c.toml"
    path.write_text("[redact]\nenabled = false\npatterns = ['\\bACME-\\d+']\n")
    r = config.load(path).redact
    assert r == config.RedactCfg(enabled=False, patterns=(r"\bACME-\d+",))
    assert Redactor(r.patterns).redact("ACME-42") == ("[redacted:custom]", {"custom": 1})


def test_speed_per_kilobyte_of_screen_text():
    """One pass per precompiled detector: a screenful of mixed text (~1.6 kB) well under a millisecond."""
    r = Redactor()
    text = TERMINAL + "\n" + INVOICE
    r.redact(text)
    n = 200
    t0 = time.perf_counter()
    for _ in range(n):
        r.redact(text)
    us_per_kb = (time.perf_counter() - t0) / n * 1e6 / (len(text.encode()) / 1000)
    print(f"redact: {us_per_kb:.0f} µs per kB ({len(text)} chars)")
    assert us_per_kb < 2000  # a shared CPU: generous; measured ~100


@pytest.mark.parametrize(
    "line",
    [
        "def _load(path: Path, secret: bool) -> tuple[bytes, bytes | None]:",
        'public, secret = zmq.auth.load_certificate(keys / "client.key_secret")',
        "server, _ = _load(path, secret=False)",
        "sock.curve_publickey, sock.curve_secretkey = self.public, self.secret",
        'tok.enable_padding(pad_id=0, pad_token="[PAD]")',
        "export GITHUB_TOKEN=$GH_TOKEN; password: {{ vault_password }}",
        "url = postgres://app:…@db/app",
    ],
)
def test_code_on_screen_that_names_a_secret_keeps_its_value(line):
    assert Redactor().redact(line) == (line, {})


def test_redacted_text_keeps_its_lines_and_a_block_keeps_its_boxes():
    lines = TERMINAL.split("\n")
    out, _ = Redactor().redact(TERMINAL)
    assert len(out.split("\n")) == len(lines)
    spanning = Redactor([r"confidential\s+memo"]).redact("a confidential\nmemo here")
    assert spanning == ("a [redacted:custom]\n[redacted:custom] here", {"custom": 1})

    read = [TextLine(t, (10, 20 + 18 * i, 8 * len(t), 14), 0.9) for i, t in enumerate(lines)]
    (block,) = blocks(read, max_chars=10_000)
    clean, counts = Redactor().block(block)
    assert clean.text == out and counts.total() == 8
    assert [ln.box for ln in clean.lines] == [ln.box for ln in block.lines] and clean.box == block.box
    assert [ln.text for ln in clean.lines] == out.split("\n")
    plain = blocks([TextLine("nothing to hide here", (0, 0, 160, 14), 0.9)])[0]
    assert Redactor().block(plain) == (plain, {})
