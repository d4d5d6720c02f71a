"""The answer letter in generated text (FinanceIQ's rules, deterministic)."""

import pytest

from xy_jax.eval.extract import extract_choice


@pytest.mark.parametrize("text,letter", [
    ("答案是B。", "B"),
    ("选C", "C"),
    ("B. 市盈率", "B"),
    ("I think (D)", "D"),
    ("", None),
    ("我不知道这道题。", None),
    ("  C", "C"),
    ("正确答案为：A，因为市盈率是股价与每股收益之比。", "A"),
    ("根据题意，选项D正确。", "D"),
    ("分析：A项错误，B项也不对，C项当选。", "C"),  # nested matches keep the last letter
    ("Also wrong", "A"),  # FinanceIQ's first rule: a text starting with a letter answers it
    ("In my view, Apples and Bananas", None),  # letters inside words are no answer
    ("the answer: B and not C", "B"),
])
def test_extract_choice(text, letter):
  assert extract_choice(text) == letter
