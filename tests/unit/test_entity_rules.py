"""Entity span and label rules (pipeline/entity_rules.py): each rule on short handwritten lines,
once where it fires and once where it must not, then hostile inputs (empty text, edges,
overlapping or invalid mentions, huge texts, control characters, all capitals), and the rules
wired into the real tagger on a tiny text."""

from __future__ import annotations

import time

import pytest

from pipeline import entity_rules
from pipeline.config import PACKAGE_DATA, Settings
from pipeline.entity_rules import RuleName, apply, explain
from pipeline.nlp import tag_entities
from pipeline.records import Mention


def mention(text: str, surface: str, label: str, nth: int = 0) -> Mention:
    """The nth occurrence of `surface` in `text` as a raw mention."""
    start = -1
    for _ in range(nth + 1):
        start = text.index(surface, start + 1)
    return Mention(start=start, end=start + len(surface), surface=surface, label=label, canonical="")


def spans(text: str, *raw: tuple[str, str], skip: tuple[RuleName, ...] = ()) -> set[tuple[str, str]]:
    """{(surface, label)} after the rules, checking every output's offsets against the text."""
    out = apply(text, [mention(text, s, lb) for s, lb in raw], skip=skip)
    for m in out:
        assert 0 <= m.start < m.end <= len(text) and text[m.start:m.end] == m.surface
    return {(m.surface, m.label) for m in out}


def rules_used(text: str, *raw: tuple[str, str]) -> set[RuleName]:
    return {c.rule for c in explain(text, [mention(text, s, lb) for s, lb in raw])[1]}


# --- split_span ----------------------------------------------------------------------------

def test_split_span_cuts_numbers_off_persons_and_places():
    text = "Batting : Tom Okafor 54 , Ray Lind 12\nHarbour City 4 2 1"
    assert ("Tom Okafor", "PERSON") in spans(text, ("Tom Okafor 54", "PERSON"))
    assert ("Harbour City", "GPE") in spans(text, ("Harbour City 4 2 1", "GPE"), skip=(RuleName.RESULTS_TEAM, RuleName.ROW_HEAD))


def test_split_span_cuts_at_lines_dashes_and_brackets():
    text = "Kenya - Daniel Mwangi ( 12th )\nElm Street\nOak Avenue"
    assert spans(text, ("Kenya - Daniel Mwangi", "ORG"), ("Elm Street\nOak Avenue", "FAC")) == {
        ("Kenya", "ORG"), ("Daniel Mwangi", "ORG"), ("Elm Street", "FAC"), ("Oak Avenue", "FAC")}


def test_split_span_drops_a_common_word_cut_off_a_name():
    text = "Snow is coming to the Levant\nHeavy rain fell, and heavy snow."
    assert spans(text, ("the Levant\nHeavy", "LOC")) == {("Levant", "LOC")}


def test_split_span_trims_dashes_quotes_and_bullets_at_the_edges():
    text = 'the ex-Milan coach, "Oslo" and \u2022 Bergen -'
    got = spans(text, ("-Milan", "GPE"), ('"Oslo"', "GPE"), ("\u2022 Bergen -", "GPE"))
    assert got == {("Milan", "GPE"), ("Oslo", "GPE"), ("Bergen", "GPE")}


def test_split_span_keeps_dots_and_inner_apostrophes():
    text = "Acme Corp. and the U.S. met O'Neill."
    got = spans(text, ("Acme Corp.", "ORG"), ("U.S.", "GPE"), ("O'Neill", "PERSON"))
    assert got == {("Acme Corp.", "ORG"), ("U.S.", "GPE"), ("O'Neill", "PERSON")}


def test_split_span_keeps_numbered_names_in_prose():
    text = "Channel 4 broadcast the debate, and the Boeing 747 landed at Route 66 Diner."
    assert spans(text, ("Channel 4", "ORG"), ("Boeing 747", "PRODUCT"), ("Route 66 Diner", "FAC")) == {
        ("Channel 4", "ORG"), ("Boeing 747", "PRODUCT"), ("Route 66 Diner", "FAC")}


def test_split_span_drops_a_name_without_a_capital():
    text = "The model was 747 units, the 182nd in a row, said the report."
    assert spans(text, ("747", "PRODUCT"), ("182nd", "ORG")) == set()


def test_split_span_cuts_scores_and_keeps_caseless_scripts():
    text = "Belarus beat Estonia 1-0 in a qualifier in \u0627\u0644\u0642\u0627\u0647\u0631\u0629 on a warm day."
    arabic = "\u0627\u0644\u0642\u0627\u0647\u0631\u0629"
    assert spans(text, ("Estonia 1-0", "ORG"), (arabic, "GPE")) == {("Estonia", "ORG"), (arabic, "GPE")}


# --- leading_the ---------------------------------------------------------------------------

def test_leading_the_is_trimmed_from_organisations_and_places():
    text = "The Red Cross met the Federal Reserve in the West Bank."
    assert spans(text, ("The Red Cross", "ORG"), ("the Federal Reserve", "ORG"), ("the West Bank", "LOC")) == {
        ("Red Cross", "ORG"), ("Federal Reserve", "ORG"), ("West Bank", "LOC")}


def test_leading_the_stays_where_it_is_part_of_the_name_or_a_person():
    text = "Talks resumed in The Hague, where the Rock spoke."
    assert spans(text, ("The Hague", "GPE"), ("the Rock", "PERSON")) == {("The Hague", "GPE"), ("the Rock", "PERSON")}


# --- title_prefix -------------------------------------------------------------------------

def test_title_prefix_is_trimmed_from_persons():
    text = "Fullback Tom Hale scored; Prime Minister Jan Kos and Dr. Ana Li spoke."
    assert spans(text, ("Fullback Tom Hale", "PERSON"), ("Prime Minister Jan Kos", "PERSON"), ("Dr. Ana Li", "PERSON")) == {
        ("Tom Hale", "PERSON"), ("Jan Kos", "PERSON"), ("Ana Li", "PERSON")}


def test_title_prefix_keeps_a_name_word_and_other_labels():
    text = "The President spoke to General Motors and to Judge Dredd fans."
    got = spans(text, ("President", "PERSON"), ("General Motors", "ORG"), ("Judge Dredd", "WORK_OF_ART"))
    assert got == {("President", "PERSON"), ("General Motors", "ORG"), ("Judge Dredd", "WORK_OF_ART")}


# --- possessive ----------------------------------------------------------------------------

def test_possessive_is_trimmed_in_plain_and_tokenised_text():
    text = "Norway's coast, Norway 's fjords and the Rangers' coach."
    assert spans(text, ("Norway's", "GPE"), ("Norway 's", "GPE"), ("Rangers'", "ORG")) == {
        ("Norway", "GPE"), ("Rangers", "ORG")}


def test_possessive_leaves_apostrophes_inside_and_after_other_letters():
    text = "Ryan O'Neill ate at Dunkin' on Friday."
    assert spans(text, ("Ryan O'Neill", "PERSON"), ("Dunkin'", "ORG")) == {("Ryan O'Neill", "PERSON"), ("Dunkin'", "ORG")}


# --- agency --------------------------------------------------------------------------------

def test_agency_names_the_organisation():
    text = "Kyodo news agency said the Tass news agency and the official news agency Petra agreed."
    assert spans(text, ("Kyodo", "PERSON"), ("the Tass news agency", "ORG"), ("Petra", "GPE")) == {
        ("Kyodo", "ORG"), ("Tass", "ORG"), ("Petra", "ORG")}


def test_agency_leaves_adjectives_capitalised_names_and_drops_nameless():
    text = "The Chilean news agency, the Iraqi News Agency and the state news agency reported."
    assert spans(text, ("Chilean", "NORP"), ("the Iraqi News Agency", "ORG"), ("the state news agency", "ORG")) == {
        ("Chilean", "NORP"), ("Iraqi News Agency", "ORG")}


# --- table_word ----------------------------------------------------------------------------

def test_table_word_drops_generic_words_and_column_headers():
    text = "Attendance : 4,500\nW L T PTS\nWomen 's final"
    assert spans(text, ("Attendance", "ORG"), ("W L T PTS", "ORG"), ("Women", "ORG")) == set()


def test_table_word_keeps_acronyms_and_names():
    text = "The WHO met Manchester United."
    assert spans(text, ("WHO", "ORG"), ("Manchester United", "ORG")) == {("WHO", "ORG"), ("Manchester United", "ORG")}


# --- results_team --------------------------------------------------------------------------

def test_results_team_relabels_a_place_followed_by_a_score():
    text = "Bolton 2 Reading 1 ( halftime 1-0 )"
    assert spans(text, ("Bolton", "GPE"), ("Reading", "GPE")) == {("Bolton", "ORG"), ("Reading", "ORG")}
    assert RuleName.RESULTS_TEAM in rules_used(text, ("Bolton", "GPE"))


def test_results_team_not_in_prose_nor_for_persons():
    prose = "Bolton is 20 miles from the coast and has 3 parks."
    assert spans(prose, ("Bolton", "GPE")) == {("Bolton", "GPE")}
    golf = "Tim Wade 67 71 , Ana Ruiz 70 70"
    assert spans(golf, ("Tim Wade", "PERSON")) >= {("Tim Wade", "PERSON")}


# --- dateline ------------------------------------------------------------------------------

def test_dateline_adds_or_relabels_the_place():
    text = "OSLO 2024-03-02\nPrices rose.\nNAIROBI (Reuters) - Rain fell."
    assert spans(text, ("NAIROBI", "ORG")) == {("OSLO", "GPE"), ("NAIROBI", "GPE"), ("Reuters", "ORG")}


def test_dateline_byline_agency_is_an_organisation():
    text = "NEW YORK, Jan. 5 (AP) - Stocks fell.\nLIMA (Andina News) - Rain."
    assert spans(text, ("AP", "GPE")) == {("NEW YORK", "GPE"), ("AP", "ORG"), ("LIMA", "GPE"), ("Andina News", "ORG")}


def test_dateline_only_at_a_line_start():
    text = "Trains left OSLO 2024-03-02 and ACME shares fell.\nUN (WHO) said.\nBONN\nTHE END 2"
    assert spans(text) == set()


# --- caps_line -----------------------------------------------------------------------------

def test_caps_line_drops_weak_labels_in_headlines():
    text = "MARKET REPORT - ACME SHARES FALL IN OSLO\nAcme Corp said sales fell."
    got = spans(text, ("MARKET REPORT", "ORG"), ("ACME", "ORG"), ("OSLO", "GPE"), ("Acme", "ORG"))
    assert ("MARKET REPORT", "ORG") not in got
    assert {("ACME", "ORG"), ("OSLO", "GPE"), ("Acme", "ORG")} <= got  # vouched for, a place


def test_caps_line_keeps_results_lines_and_mixed_case():
    text = "LG 2 OB 0\nMarket Report said so."
    assert {("LG", "ORG"), ("Market Report", "ORG")} <= spans(text, ("LG", "ORG"), ("Market Report", "ORG"))


# --- caps_echo -----------------------------------------------------------------------------

def test_caps_echo_finds_mixed_case_names_in_capitals():
    text = "NORWAY BEAT NEW ZEALAND\nNorway beat New Zealand on Sunday."
    got = spans(text, ("Norway", "GPE"), ("New Zealand", "GPE"))
    assert {("NORWAY", "GPE"), ("NEW ZEALAND", "GPE")} <= got


def test_caps_echo_not_inside_words_nor_over_mentions_nor_in_prose():
    text = "NORWAYS BEAT CHILEAN SIDE\nNorway and Chile played; norway lost."
    got = spans(text, ("Norway", "GPE"), ("Chile", "GPE"), ("CHILEAN SIDE", "GPE"))
    assert got == {("Norway", "GPE"), ("Chile", "GPE"), ("CHILEAN SIDE", "GPE")}


# --- row_head ------------------------------------------------------------------------------

def test_row_head_makes_table_rows_teams():
    text = "Standings :\nLyon 12 8 3 1 27\nSaint Etienne 12 7 2 3 22\nRiverton 3 Oakdale 1"
    got = spans(text, ("Lyon", "GPE"))
    assert {("Lyon", "ORG"), ("Saint Etienne", "ORG"), ("Riverton", "ORG"), ("Oakdale", "ORG")} <= got


def test_row_head_leaves_players_and_single_numbers():
    text = "Anna Berg shot well.\nAnna Berg 68 70 69\nP. Morel 70 71 70\nPage 3"
    got = spans(text, ("Anna Berg", "PERSON"))
    assert not any(lb == "ORG" for _, lb in got)


# --- place_modifier ------------------------------------------------------------------------

def test_place_modifier_grows_a_place_into_an_organisation():
    text = "shares rose, the Oslo Telegraph said on Monday."
    assert spans(text, ("Oslo", "GPE")) == {("Oslo Telegraph", "ORG")}
    text = "she won the Bergen Open on Sunday after a long final against her rival."
    assert spans(text, ("Bergen", "GPE")) == {("Bergen Open", "EVENT")}


def test_place_modifier_leaves_titles_headlines_and_covered_words():
    text = ("the U.S. Secretary of State arrived.\nFloods Hit France As Storms Continue\n"
            "they met in Paris Monday.")
    got = spans(text, ("U.S.", "GPE"), ("France", "GPE"), ("Paris", "GPE"), ("Monday", "DATE"))
    assert {("U.S.", "GPE"), ("France", "GPE"), ("Paris", "GPE")} <= got


# --- initial_name --------------------------------------------------------------------------

def test_initial_name_adds_grows_and_relabels():
    text = "caught by R. Mendes , bowled K. Osei , and T. Vance 40"
    got = spans(text, ("K.", "NORP"), ("T. Vance", "ORG"))
    assert {("R. Mendes", "PERSON"), ("K. Osei", "PERSON"), ("T. Vance", "PERSON")} <= got


def test_initial_name_leaves_places_and_sentence_ends():
    text = "N. Korea warned.\nThey were in Group B. Germany won. Prices of U.S. Treasuries fell."
    got = spans(text, ("N. Korea", "GPE"))
    assert got == {("N. Korea", "GPE")}


# --- competitor ----------------------------------------------------------------------------

def test_competitor_is_a_person():
    text = "1. Lena Park ( Sweden ) 12.31\n2. Maya Holm (Norway) 12.40"
    got = spans(text, ("Lena Park", "ORG"), ("Sweden", "GPE"), ("Maya Holm", "GPE"), ("Norway", "GPE"))
    assert {("Lena Park", "PERSON"), ("Maya Holm", "PERSON")} <= got


def test_competitor_not_for_companies_single_words_or_non_places():
    text = "Acme Corp ( Japan ) rose. Norrkoping ( Sweden ) won. Red Lions ( Acme ) lost."
    got = spans(text, ("Acme Corp", "ORG"), ("Japan", "GPE"), ("Norrkoping", "ORG"), ("Sweden", "GPE"),
                ("Red Lions", "ORG"), ("Acme", "ORG"))
    assert {("Acme Corp", "ORG"), ("Norrkoping", "ORG"), ("Red Lions", "ORG")} <= got


def test_competitor_added_in_a_start_list():
    text = "1. Ada Obi ( Nigeria ) 11.02\n2. Ben Sato (Japan) 11.10, Eva Lind ( Sweden ) 11.20"
    got = spans(text, ("Nigeria", "GPE"), ("Japan", "GPE"), ("Sweden", "GPE"))
    assert {("Ada Obi", "PERSON"), ("Ben Sato", "PERSON"), ("Eva Lind", "PERSON")} <= got


def test_competitor_not_added_mid_sentence():
    text = "They praised the Big Red Machine ( Canada ) and bought Acme Corp ( Japan ) shares."
    got = spans(text, ("Canada", "GPE"), ("Japan", "GPE"))
    assert got == {("Canada", "GPE"), ("Japan", "GPE")}


# --- venue ---------------------------------------------------------------------------------

def test_venue_heads_a_results_line():
    text = "At Millbrook : Riverton 245 and 110-3 , Oakdale 198\nStonefield : Ashby 301 , Kelso 88-2"
    got = spans(text, ("Stonefield", "PERSON"))
    assert {("Millbrook", "GPE"), ("Stonefield", "GPE")} <= got


def test_venue_not_for_field_labels_or_team_sheets():
    text = ("Scores : Riverton 245 , Oakdale 198\nFax : ( 555 ) 123-4567 , 12\n"
            "England : Tom Hale ( captain ) , Joe Root\nPrices : up 2 to 3")
    got = spans(text, ("Tom Hale", "PERSON"), ("England", "GPE"))
    assert not {s for s, _ in got} & {"Scores", "Fax", "Prices"}
    assert ("England", "GPE") in got


# --- first_name ----------------------------------------------------------------------------

def test_first_name_joins_the_surname():
    text = "The forward Ilse Varga scored twice."
    assert spans(text, ("Varga", "PERSON")) == {("Ilse Varga", "PERSON")}


def test_first_name_not_after_openers_titles_or_mentions():
    text = "But Varga scored. President Kolar spoke. Hungary Novak played."
    got = spans(text, ("Varga", "PERSON"), ("Kolar", "PERSON"), ("Hungary", "GPE"), ("Novak", "PERSON"))
    assert {("Varga", "PERSON"), ("Kolar", "PERSON"), ("Novak", "PERSON")} <= got


# --- acronym ------------------------------------------------------------------------------

def test_acronym_after_its_name_and_echoed_later():
    text = "The Northern Farmers Union ( NFU ) and the World Health Organization (WHO) met.\nThe NFU left."
    got = spans(text, ("Northern Farmers Union", "ORG"), ("World Health Organization", "ORG"))
    assert {("NFU", "ORG"), ("WHO", "ORG")} <= got
    out = apply(text, [mention(text, "Northern Farmers Union", "ORG")])
    assert [m.start for m in out if m.surface == "NFU"] == [text.index("NFU"), text.rindex("NFU")]


def test_acronym_not_when_the_letters_do_not_match():
    text = "Acme Holdings ( NYSE ) and the Northern Farmers Union ( AP ) reported."
    got = spans(text, ("Acme Holdings", "ORG"), ("Northern Farmers Union", "ORG"))
    assert got == {("Acme Holdings", "ORG"), ("Northern Farmers Union", "ORG")}


# --- name_echo ----------------------------------------------------------------------------

def test_name_echo_finds_surnames_and_repeated_names():
    text = "Mayor Ilona Varga met Acme Holdings on Monday.\nVarga said Acme Holdings would stay."
    assert ("Varga", "PERSON") in spans(text, ("Ilona Varga", "PERSON"), ("Acme Holdings", "ORG"))
    out = apply(text, [mention(text, "Ilona Varga", "PERSON"), mention(text, "Acme Holdings", "ORG")])
    assert [m.start for m in out if m.surface == "Acme Holdings"] == [text.index("Acme Holdings"),
                                                                    text.rindex("Acme Holdings")]


def test_name_echo_not_for_common_words_longer_names_or_inside_words():
    text = ("Jim Rose spoke.\nPrices rose.\nRose gardens opened.\nThe Minnesota Twins won in Minnesota.\n"
            "Vargas and Varga-Smith came.\nIlona Varga left.")
    out = apply(text, [mention(text, "Jim Rose", "PERSON"), mention(text, "Minnesota", "GPE", 1),
                       mention(text, "Ilona Varga", "PERSON")])
    assert not any(m.surface == "Rose" for m in out)
    assert [m.surface for m in out if m.label == "GPE"] == ["Minnesota"]
    assert text.index("Minnesota") not in {m.start for m in out}
    assert not any(m.surface == "Varga" for m in out)


# --- the driver and hostile inputs ---------------------------------------------------------

def test_every_rule_is_named_and_documented():
    rules = dict(entity_rules.SPAN_RULES) | dict(entity_rules.TEXT_RULES)
    assert set(rules) == set(RuleName)
    for name, fn in rules.items():
        assert fn.__name__ == name.value and fn.__doc__ and len(fn.__doc__) > 40


def test_skip_turns_a_rule_off():
    text = "the Federal Reserve said."
    raw = [mention(text, "the Federal Reserve", "ORG")]
    assert apply(text, raw, skip=[RuleName.LEADING_THE])[0].surface == "the Federal Reserve"


def test_empty_text_and_no_mentions():
    assert apply("", []) == []
    assert apply("Plain words only.", []) == []


def test_mentions_at_the_edges_of_the_text():
    text = "The Red Cross thanked Lyon 2"
    got = spans(text, ("The Red Cross", "ORG"), ("Lyon 2", "GPE"))
    assert ("Red Cross", "ORG") in got and ("Lyon", "GPE") in got


def test_invalid_mentions_pass_through_untouched():
    text = "Oslo is cold."
    bad = [Mention(start=0, end=4, surface="Bergen", label="GPE", canonical=""),
           Mention(start=-3, end=2, surface="xx", label="ORG", canonical=""),
           Mention(start=10, end=99, surface="cold.", label="ORG", canonical=""),
           Mention(start=5, end=5, surface="", label="ORG", canonical="")]
    assert sorted(apply(text, bad), key=lambda m: m.start) == sorted(bad, key=lambda m: m.start)


def test_overlapping_and_out_of_order_mentions():
    text = "the Federal Reserve Bank of Kansas City 4-2"
    raw = [mention(text, "Kansas City 4-2", "GPE"), mention(text, "the Federal Reserve", "ORG"),
           mention(text, "the Federal Reserve Bank of Kansas City", "ORG"), mention(text, "Kansas City 4-2", "GPE")]
    out = apply(text, raw)
    assert out == sorted(out, key=lambda m: (m.start, m.end))
    assert len({(m.start, m.end) for m in out}) == len(out)
    assert all(text[m.start:m.end] == m.surface for m in out)


def test_control_characters():
    text = "\x00Acme\x0b Corp 12\r\nthe Oslo\u2028Times said\x1b[31m Lyon 2 Hull 1\x7f"
    raw = [mention(text, "Acme\x0b Corp 12", "ORG"), mention(text, "the Oslo\u2028Times", "ORG"),
           mention(text, "Lyon", "GPE")]
    out = apply(text, raw)
    assert all(0 <= m.start < m.end <= len(text) and text[m.start:m.end] == m.surface for m in out)


def test_all_capitals_text():
    text = ("WORLD NEWS - RIVERTON MAYOR QUITS\nRIVERTON 2024-05-01\nTHE MAYOR OF RIVERTON , JON HALE , "
            "RESIGNED ON FRIDAY AFTER THE CITY COUNCIL VOTED 7-2 .\n") * 3
    raw = [mention(text, "JON HALE", "PERSON", 1), mention(text, "RIVERTON", "GPE", 2),
           mention(text, "THE CITY COUNCIL", "ORG", 0)]
    out = apply(text, raw)
    assert all(text[m.start:m.end] == m.surface for m in out)
    assert ("RIVERTON", "GPE") in {(m.surface, m.label) for m in out}  # the dateline


def _huge(lines: int) -> tuple[str, list[Mention]]:
    line = "Lyon 2 Nantes 1 , the Oslo Telegraph said P. Morel and Varga 's team . "
    text = (line + "\nOSLO 2024-01-01\nNORWAY BEAT LYON\n") * lines
    raw: list[Mention] = []
    step = len(line) + len("\nOSLO 2024-01-01\nNORWAY BEAT LYON\n")
    for k in range(lines):
        base = k * step
        for surface, label in (("Lyon", "GPE"), ("the Oslo", "GPE"), ("Varga 's", "PERSON")):
            i = line.index(surface)
            raw.append(Mention(start=base + i, end=base + i + len(surface), surface=surface, label=label,
                               canonical=""))
    return text, raw


def test_scripts_without_case_are_not_capitals_lines():
    text = "\u4e2d\u56fd\u94f6\u884c\u5728\u5317\u4eac\u3002\n\u0634\u0631\u0643\u0629 \u0623\u0631\u0627\u0645\u0643\u0648"
    bank, aramco = "\u4e2d\u56fd\u94f6\u884c", "\u0623\u0631\u0627\u0645\u0643\u0648"
    assert spans(text, (bank, "ORG"), (aramco, "ORG")) == {(bank, "ORG"), (aramco, "ORG")}


def test_huge_text_with_many_mentions_runs_in_linear_time():
    timings = []
    for lines in (2000, 4000):
        text, raw = _huge(lines)
        started = time.perf_counter()
        out = apply(text, raw)
        timings.append(time.perf_counter() - started)
        assert len(out) >= len(raw)
    assert timings[1] < 10
    assert timings[1] < 3.5 * timings[0] + 0.2  # twice the input: about twice the time


def test_one_long_line_of_capitalised_words_is_linear():
    started = time.perf_counter()
    apply("Aa " * 200_000, [])
    apply(("Aa 1 " * 50_000) + "x", [])
    assert time.perf_counter() - started < 5


# --- wired into the tagger -----------------------------------------------------------------

def test_tag_entities_applies_the_rules():
    text = "Results on Saturday :\nRiverton 3 Oakdale 1\nInterfax news agency said the Federal Reserve met."
    [ms] = tag_entities([text], model=Settings().spacy_model, gazetteer=PACKAGE_DATA / "gazetteer.yaml")
    got = {(m.surface, m.label) for m in ms}
    assert all(text[m.start:m.end] == m.surface for m in ms)
    assert ("Riverton", "ORG") in got and ("Oakdale", "ORG") in got
    assert not any(m.surface.startswith("the ") or m.surface.endswith("news agency") for m in ms)


@pytest.mark.parametrize("surface", ["Interfax news agency", "the Federal Reserve"])
def test_trimmed_spans_keep_their_offsets(surface: str):
    text = f"Yesterday {surface} said prices rose."
    [m] = apply(text, [mention(text, surface, "ORG")])
    assert text[m.start:m.end] == m.surface and m.surface in surface
