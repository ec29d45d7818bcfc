from pathlib import Path

from server.engine import BUILTIN_RULES_DIR, load_rules


def test_every_rule_module_has_a_test() -> None:
    tests = Path(__file__).parent / "rules"
    missing = [
        rule.id for rule in load_rules([BUILTIN_RULES_DIR])[0] if not (tests / f"test_{rule.id}.py").exists()
    ]
    assert missing == [], f"rules without tests/rules/test_<id>.py: {missing}"
