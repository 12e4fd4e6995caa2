"""Issue 16, "text input" in protocol files: a control character, a bidirectional control
or a lone surrogate in a name, a title or a key is refused with the loader's usual file,
field and reason; descriptions and notes may run over several lines.

On main each of these files loaded, and its names reached pages, CSV cells and mail.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from rules import ProtocolError, load_protocol, text_problem

ProtocolText = Callable[..., str]
WriteProtocol = Callable[..., Path]


@pytest.mark.parametrize(
    ("old", "new", "field", "reason"),
    [
        ("    name: Visit\n", '    name: "Visit\\x1b[2J"\n', "name", "control character U+001B"),
        ("title: Test protocol\n", 'title: "Test\\rprotocol"\n', "title", "U+000D"),
        ("title: Test protocol\n", 'title: "\\u202elocotorp"\n', "title", "bidirectional"),
        ("  dx_a: Diagnosis A\n", '  dx_a: "Diagnosis\\u2028A"\n', "diagnoses.dx_a", "U+2028"),
        ("  dx_a: Diagnosis A\n", '  "dx\\ta": Diagnosis A\n', "diagnoses.dx\ta", "U+0009"),
        (
            "    title: Reference one\n",
            '    title: "Ref\\ud800"\n',
            "references.REF-1.title",
            "lone surrogate",
        ),
    ],
)
def test_a_control_character_in_a_name_is_refused_naming_the_file_and_field(
    protocol_text: ProtocolText,
    write_protocol: WriteProtocol,
    old: str,
    new: str,
    field: str,
    reason: str,
) -> None:
    path = write_protocol(protocol_text(replace={old: new}))
    with pytest.raises(ProtocolError) as refused:
        load_protocol(path)
    assert refused.value.source == str(path)
    assert refused.value.field is not None
    assert refused.value.field.endswith(field)
    assert reason in refused.value.reason


def test_a_description_may_run_over_lines_but_holds_no_other_control_character(
    protocol_text: ProtocolText, write_protocol: WriteProtocol
) -> None:
    several = '    description: "Death\\n\\tconfirmed"\n'
    protocol = load_protocol(
        write_protocol(protocol_text(replace={"    description: Death\n": several}))
    )
    assert protocol.events["death"]
    bell = '    description: "Death\\a"\n'
    with pytest.raises(ProtocolError, match=r"events.death.description.*U\+0007"):
        load_protocol(write_protocol(protocol_text(replace={"    description: Death\n": bell})))


@pytest.mark.parametrize(
    ("text", "multi_line", "refused"),
    [
        ("Cytokine release syndrome", False, False),
        ("Ünïcödé 日本語 عربي", False, False),
        ("a\nb", False, True),
        ("a\nb\r\n\tc", True, False),
        ("a\x00b", True, True),
        ("a\x85b", True, True),  # NEL, a C1 control
        ("a\u202eb", False, True),
        ("a\u202eb", True, False),  # a right-to-left narrative may need it
        ("a\u2029b", False, True),
        ("a\ud800b", True, True),
        ("a\udfffb", False, True),
    ],
)
def test_text_problem_is_the_one_definition(text: str, multi_line: bool, refused: bool) -> None:
    assert (text_problem(text, multi_line=multi_line) is not None) is refused
