"""ARTS POSLog XML in the files source: receipts out of transactions, safely, in a stream, whatever the bytes."""

from __future__ import annotations

import gzip
import io
import time
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from hub import SourceError
from hub.mapping import load_mapping
from hub_plugins.files import poslog
from hub_plugins.files.formats import CsvRecords, PoslogRecords, detect_format
from hub_plugins.files.poslog import Receipt, Rejected, read_poslog
from hub_plugins.files.settings import FilesSettings
from hub_plugins.standard.transforms import TRANSFORMS

DATA = Path(__file__).parent / "data"
SAMPLE = DATA / "poslog_sample.xml"
MAPPINGS = Path(__file__).resolve().parents[3] / "mappings"
HEAD = b'<?xml version="1.0" encoding="UTF-8"?>\n<POSLog xmlns="http://www.nrf-arts.org/IXRetail/namespace/">\n'
TAIL = b"</POSLog>\n"


def sale(n: int, *, sku: str = "A-1", description: str = "Ullgenser") -> str:
    """One small sale transaction, numbered ``n``."""
    return (
        f"<Transaction><RetailStoreID>S001</RetailStoreID><WorkstationID>2</WorkstationID>"
        f"<SequenceNumber>{n}</SequenceNumber><TransactionID>{n}</TransactionID>"
        f"<BusinessDayDate>2024-03-02</BusinessDayDate><EndDateTime>2024-03-02T12:00:00</EndDateTime>"
        f'<CurrencyCode>NOK</CurrencyCode><RetailTransaction Version="2.1">'
        f'<LineItem><SequenceNumber>1</SequenceNumber><Sale ItemType="Stock"><ItemID>{sku}</ItemID>'
        f"<Description>{description}</Description><RegularSalesUnitPrice>100.00</RegularSalesUnitPrice>"
        f"<ExtendedAmount>100.00</ExtendedAmount><Quantity>1</Quantity></Sale></LineItem>"
        f'<LineItem><SequenceNumber>2</SequenceNumber><Tender TenderType="Cash" TypeCode="Sale">'
        f"<Amount>100.00</Amount></Tender></LineItem></RetailTransaction></Transaction>\n"
    )


def document(*transactions: str) -> bytes:
    return HEAD + "".join(transactions).encode() + TAIL


def items(data: bytes, **options: Any) -> list[Receipt | Rejected]:
    return list(read_poslog(io.BytesIO(data), **options))


def receipt_ids(found: list[Receipt | Rejected]) -> list[str]:
    return [item.record["receipt_id"] for item in found if isinstance(item, Receipt)]


def rejects(found: list[Receipt | Rejected]) -> list[Rejected]:
    return [item for item in found if isinstance(item, Rejected)]


def file_records(path: Path, encoding: str = "utf-8-sig") -> list[dict[str, Any]]:
    return list(PoslogRecords(path, path.name, encoding))


# -- the sample file ----------------------------------------------------------------------------------------------


def test_the_sample_loads_every_sale_and_return_and_rejects_only_the_malformed_transaction():
    records = file_records(SAMPLE)

    good = [r["receipt_id"] for r in records if "_error" not in r]
    bad = [r for r in records if "_error" in r]
    assert good == ["1000000001", "S001-1-2024-03-02-77", "1000000003", "1000000006"]
    assert len(bad) == 1
    assert (
        bad[0]["_error"]
        == "line 120: transaction TransactionID '1000000005': LineItem 1: Sale Quantity 'two' is not a number"
    )
    assert bad[0]["_raw"].startswith("<Transaction>\n    <RetailStoreID>S001</RetailStoreID>")
    assert bad[0]["_raw"].endswith("</Transaction>")
    assert "<Quantity>two</Quantity>" in bad[0]["_raw"]
    assert (bad[0]["_file"], bad[0]["_line"]) == ("poslog_sample.xml", 120)


def test_a_sale_has_the_csv_layout_fields_with_store_workstation_loyalty_and_tenders():
    first = file_records(SAMPLE)[0]

    assert {k: v for k, v in first.items() if k not in ("lines", "tenders")} == {
        "receipt_id": "1000000001",
        "transaction_id": "1000000001",
        "store_id": "S001",
        "register_id": "2",
        "sequence_no": "1001",
        "business_date": "2024-03-02",
        "timestamp": "2024-03-02T12:00:00",
        "operator_id": "kari",
        "currency": "NOK",
        "loyalty_id": "7012345678",  # the vendor extension acs:LoyaltyMembership/acs:LoyaltyID
        "customer_id": None,
        "is_return": False,
        "original_receipt_id": None,
        "tender_type": "Cash",
        "total": "229.90",
        "voided_lines": 0,
    }
    assert first["lines"][0] == {
        "line_no": "1",
        "sku": "A-1",
        "ean": None,
        "description": "Ullgenser",
        "item_type": "Stock",
        "qty": "2",
        "unit_price": "100.00",
        "line_discount": "20.00",
        "line_total": "180.00",
        "is_return": False,
        "original_receipt_id": None,
    }
    assert first["lines"][1]["sku"] == "B-2"  # POSIdentity/POSItemID when there is no ItemID
    assert first["tenders"] == [
        {"line_no": "3", "tender_type": "Cash", "type_code": "Sale", "amount": "250.00", "change": "20.10"}
    ]


def test_a_return_has_negative_lines_and_names_the_original_receipt():
    back = file_records(SAMPLE)[2]

    assert (back["is_return"], back["original_receipt_id"]) == (True, "1000000001")
    assert {k: back["lines"][0][k] for k in ("qty", "unit_price", "line_discount", "line_total")} == {
        "qty": "-1",
        "unit_price": "100.00",
        "line_discount": "-10.00",
        "line_total": "-90.00",
    }


def test_a_transaction_link_without_a_transaction_id_names_the_original_by_store_workstation_day_and_sequence():
    link = (
        "<TransactionLink><BusinessDayDate>2024-03-01</BusinessDayDate>"
        "<SequenceNumber>9</SequenceNumber></TransactionLink>"
    )
    returned = sale(5).replace("<Sale ", "<Return ").replace("</Sale>", link + "</Return>")

    (found,) = items(document(returned))

    assert isinstance(found, Receipt)
    assert found.record["original_receipt_id"] == "S001-2-2024-03-01-9"  # the return's own store and workstation


def test_voided_lines_are_left_out_and_counted_and_gtin_item_ids_are_eans():
    weighed = file_records(SAMPLE)[1]

    assert [line["line_no"] for line in weighed["lines"]] == ["1"]
    assert weighed["voided_lines"] == 1
    assert (weighed["lines"][0]["sku"], weighed["lines"][0]["ean"]) == ("C-3", "7311310026612")
    assert weighed["lines"][0]["qty"] == "0.5"
    assert (weighed["loyalty_id"], weighed["customer_id"]) == ("7099999999", "C-42")


@pytest.mark.parametrize(
    "change",
    [
        ("<Transaction>", '<Transaction CancelFlag="true">'),
        ("<Transaction>", '<Transaction TrainingModeFlag="true">'),
        ('<RetailTransaction Version="2.1">', '<RetailTransaction Version="2.1" TransactionStatus="PostVoided">'),
        ('<RetailTransaction Version="2.1">', '<RetailTransaction Version="2.1" TransactionStatus="Suspended">'),
        ("<LineItem><SequenceNumber>1", '<LineItem VoidFlag="true"><SequenceNumber>1'),
        ("RetailTransaction", "ControlTransaction"),
    ],
)
def test_voided_cancelled_training_and_control_transactions_give_no_record(change):
    found = items(document(sale(1).replace(*change), sale(2)))

    assert [item.record for item in found] == [item.record for item in items(document(sale(2)))]  # type: ignore[union-attr]


def test_element_names_are_read_without_their_namespace_prefix_and_unknown_elements_are_skipped():
    prefixed = sale(1).replace("<", "<nrf:").replace("<nrf:/", "</nrf:")
    data = (
        b'<nrf:POSLog xmlns:nrf="http://www.nrf-arts.org/IXRetail/namespace/" xmlns:x="urn:x">'
        + b"<x:BatchHeader><x:Count>1</x:Count></x:BatchHeader>"
        + prefixed.replace("<nrf:LineItem>", "<nrf:LineItem><x:Promo><x:Code>P1</x:Code></x:Promo>", 1).encode()
        + b"</nrf:POSLog>"
    )

    (found,) = items(data)

    assert isinstance(found, Receipt)
    assert (found.record["receipt_id"], found.record["lines"][0]["sku"]) == ("1", "A-1")


# -- the same sale from either export -------------------------------------------------------------------------------

CSV_HEADER = (
    "receipt_id,store_id,register_id,business_date,timestamp,line_no,sku,qty,unit_price,line_discount,line_total,"
    "currency,loyalty_id,original_receipt_id"
)
CSV_ROWS = [
    "1000000001,S001,2,2024-03-02,2024-03-02 12:00:00,1,A-1,2,100.00,20.00,180.00,NOK,7012345678,",
    "1000000001,S001,2,2024-03-02,2024-03-02 12:00:00,2,B-2,1,49.90,0.00,49.90,NOK,7012345678,",
    "1000000003,S001,2,2024-03-02,2024-03-02 16:30:00,1,A-1,-1,100.00,-10.00,-90.00,NOK,7012345678,1000000001",
]


def unified(mapping_file: str, records: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The unified rows of some records, an order once however many of its lines carry it."""
    mapping = load_mapping(MAPPINGS / mapping_file, TRANSFORMS, timezone="Europe/Oslo")
    rows: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        for entity, found in mapping.map(record).rows.items():
            rows.setdefault(entity, []).extend(row for row in found if row not in rows.get(entity, []))
    return rows


def test_a_poslog_receipt_and_a_csv_receipt_of_the_same_sale_become_the_same_unified_rows(tmp_path):
    (tmp_path / "day.csv").write_text("\n".join([CSV_HEADER, *CSV_ROWS]) + "\n", encoding="utf-8")
    csv = CsvRecords(tmp_path / "day.csv", "day.csv", encoding="utf-8", delimiter=",", header=True, columns=None)
    csv_records = list(csv)
    poslog_records = [r for r in file_records(SAMPLE) if r.get("receipt_id") in ("1000000001", "1000000003")]

    from_csv, from_poslog = unified("pos_receipts.yaml", csv_records), unified("pos_poslog.yaml", poslog_records)

    assert from_poslog == from_csv
    assert [o["external_id"] for o in from_poslog["order"]] == ["1000000001", "1000000003"]
    assert from_poslog["customer"] == [{"member_no": "7012345678"}]


# -- damage ---------------------------------------------------------------------------------------------------------


def test_a_transaction_that_is_not_a_receipt_is_a_reject_with_the_reason():
    found = items(
        document(
            sale(1).replace("<ItemID>A-1</ItemID>", ""),
            sale(2).replace("<Sale", "<Tax").replace("</Sale>", "</Tax>"),
            sale(3),
        )
    )

    assert receipt_ids(found) == ["3"]
    assert [r.reason for r in rejects(found)] == [
        "transaction TransactionID '1': LineItem 1: Sale has no ItemID or POSIdentity/POSItemID",
        "transaction TransactionID '2': no Sale or Return line item",
    ]


def test_two_line_items_with_one_sequence_number_are_a_reject_rather_than_one_line_overwriting_the_other():
    twice = sale(1).replace("<SequenceNumber>2</SequenceNumber>", "<SequenceNumber>1</SequenceNumber>")

    (found,) = items(document(twice))

    assert isinstance(found, Rejected)
    assert found.reason == "transaction TransactionID '1': LineItem 1: the SequenceNumber of an earlier line item"


def test_a_transaction_without_an_id_is_a_reject_naming_what_is_missing():
    nameless = sale(1).replace("<TransactionID>1</TransactionID>", "").replace("<WorkstationID>2</WorkstationID>", "")

    (found,) = items(document(nameless))

    assert isinstance(found, Rejected)
    assert found.reason == "transaction SequenceNumber '1': no TransactionID, and no WorkstationID to name it by"


def test_an_unescaped_ampersand_costs_only_its_own_transaction():
    found = items(document(sale(1), sale(2, description="Salt & Pepper"), sale(3)))

    assert receipt_ids(found) == ["1", "3"]
    (bad,) = rejects(found)
    assert bad.line == 4
    assert bad.reason.startswith("transaction is not well-formed XML (line 4: not well-formed (invalid token))")
    assert bad.raw == sale(2, description="Salt & Pepper")  # up to where the next transaction starts


def test_a_broken_tag_or_garbage_between_transactions_is_one_reject_and_reading_goes_on():
    broken = sale(2).replace("</ItemID>", "</ItemI")
    found = items(document(sale(1), broken, "<<garbage>>\n", sale(3), sale(4)))

    assert receipt_ids(found) == ["1", "3", "4"]
    assert len(rejects(found)) == 1  # the broken transaction and the garbage after it are one stretch
    assert rejects(found)[0].raw == broken + "<<garbage>>\n"


def test_a_file_cut_off_inside_a_transaction_loads_what_came_before_it():
    whole = document(sale(1), sale(2))

    found = items(whole[: whole.index(b"<Quantity>", whole.index(b"<TransactionID>2"))])

    assert receipt_ids(found) == ["1"]
    assert [r.reason.split(" (")[0] for r in rejects(found)] == ["transaction is not well-formed XML"]


def test_an_oversized_or_too_deeply_nested_transaction_is_a_reject_without_being_held(monkeypatch):
    monkeypatch.setattr(poslog, "MAX_TRANSACTION_BYTES", 2000)
    deep = "<a>" * 100 + "</a>" * 100
    big = sale(2, description="x" * (poslog.RAW_LIMIT + 1000))
    found = items(document(sale(1), big, sale(3).replace("<Quantity>", deep + "<Quantity>"), sale(4)))

    assert receipt_ids(found) == ["1", "4"]
    assert [r.reason for r in rejects(found)] == [
        "transaction is larger than 2000 bytes",
        "transaction nests elements deeper than 64 levels",
    ]
    assert len(rejects(found)[0].raw) == poslog.RAW_LIMIT  # its first bytes, not all of it


def test_markup_larger_than_a_transaction_may_be_is_a_reject_and_reading_goes_on(monkeypatch):
    monkeypatch.setattr(poslog, "MAX_TRANSACTION_BYTES", 2000)
    comment = "<!-- " + "x" * 10_000 + " -->\n"

    found = items(document(sale(1), comment, sale(2)), chunk_size=1000)

    assert receipt_ids(found) == ["1", "2"]
    assert [r.reason for r in rejects(found)] == [
        "not well-formed XML between transactions (markup larger than 2000 bytes)"
    ]


def test_a_transaction_inside_a_transaction_is_a_reject():
    found = items(document(sale(1).replace("<LineItem>", sale(2).strip() + "<LineItem>", 1), sale(3)))

    assert receipt_ids(found) == ["3"]
    assert [r.reason for r in rejects(found)] == ["transaction holds another <Transaction> inside it"]


def test_an_unknown_encoding_is_one_reject():
    (found,) = items(b'<?xml version="1.0" encoding="klingon"?>\n<POSLog></POSLog>')

    assert isinstance(found, Rejected)
    assert found.reason == "not an ARTS POSLog file: unknown encoding: klingon; nothing in this file was loaded"


def test_a_file_that_is_not_poslog_is_one_reject():
    (found,) = items(b"<Orders><Order/></Orders>")

    assert isinstance(found, Rejected)
    assert (
        found.reason
        == "not an ARTS POSLog file: its root element is <Orders>, not <POSLog>; nothing in this file was loaded"
    )


def test_an_empty_file_has_no_records():
    assert items(b"") == []
    assert items(b"\xef\xbb\xbf \n") == []


# -- refused files --------------------------------------------------------------------------------------------------

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE POSLog [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<POSLog>
"""


def refused(data: bytes) -> tuple[Rejected, float, int]:
    """The one reject of a refused file, with the seconds and peak bytes it took to get it."""
    tracemalloc.start()
    started = time.perf_counter()
    try:
        found = items(data)
        seconds = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(found) == 1 and isinstance(found[0], Rejected)
    return found[0], seconds, peak


def test_a_billion_laughs_file_is_refused_without_expanding_anything():
    data = BILLION_LAUGHS + sale(1).replace("Ullgenser", "&lol9;").encode() + TAIL

    reject, seconds, peak = refused(data)

    assert reject.reason.startswith("refused: it declares the entity 'lol'; entity declarations are never processed")
    assert reject.reason.endswith("nothing in this file was loaded")
    assert reject.line == 3
    assert reject.raw.startswith('<?xml version="1.0"?>\n<!DOCTYPE POSLog [')
    assert seconds < 0.5 and peak < 1_000_000


@pytest.mark.parametrize(
    ("declaration", "reason"),
    [
        (
            '<!ENTITY xxe SYSTEM "file://{secret}">',
            "refused: it declares the entity 'xxe' as external ('file://{secret}')",
        ),
        (
            '<!ENTITY % dtd SYSTEM "file://{secret}"> %dtd;',
            "refused: it declares the parameter entity 'dtd' as external",
        ),
        ('<!ENTITY img SYSTEM "file://{secret}" NDATA gif>', "refused: it declares the entity 'img' as external"),
    ],
)
def test_an_external_entity_is_refused_and_never_opened(tmp_path, declaration, reason):
    secret = tmp_path / "secret.txt"
    secret.write_text("THE-SECRET", encoding="utf-8")
    dtd = f"<!DOCTYPE POSLog [{declaration.format(secret=secret)}]>\n<POSLog>\n".encode()
    data = b'<?xml version="1.0"?>\n' + dtd + sale(1).replace("Ullgenser", "&xxe;").encode() + TAIL

    reject, _, _ = refused(data)

    assert reject.reason.startswith(reason.format(secret=secret))
    assert "THE-SECRET" not in reject.raw + reject.reason


def test_an_external_dtd_is_refused_and_never_fetched():
    data = b'<!DOCTYPE POSLog SYSTEM "http://127.0.0.1:9/poslog.dtd">\n' + document(sale(1)).split(b"\n", 1)[1]

    reject, _, _ = refused(data)

    assert reject.reason.startswith("refused: it refers to an external DTD ('http://127.0.0.1:9/poslog.dtd')")


def test_a_refused_file_is_one_error_record_of_the_files_source(tmp_path):
    path = tmp_path / "bomb.xml"
    path.write_bytes(BILLION_LAUGHS + sale(1).encode() + TAIL)

    (record,) = file_records(path)

    assert record["_error"].startswith("line 3: refused: it declares the entity 'lol'")
    assert record["_raw"].startswith('<?xml version="1.0"?>')


# -- streaming ------------------------------------------------------------------------------------------------------


def write_large(path: Path, count: int) -> int:
    """A generated POSLog file of ``count`` sales, each padded with a long description to about 4 KB."""
    with open(path, "wb") as handle:
        handle.write(HEAD)
        for n in range(count):
            handle.write(sale(n, sku=f"SKU-{n % 500}", description=f"Ullgenser {n} " + "x" * 3500).encode())
        handle.write(TAIL)
    return path.stat().st_size


def peak_while_reading(path: Path) -> tuple[int, int]:
    """(receipts, peak bytes allocated) while reading a file through the files source's reader."""
    tracemalloc.start()
    try:
        count = sum(1 for record in PoslogRecords(path, path.name, "utf-8-sig") if "_error" not in record)
        return count, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_large_file_is_read_in_a_stream_with_flat_memory(tmp_path):
    small, large = tmp_path / "small.xml", tmp_path / "large.xml"
    write_large(small, 300)
    size = write_large(large, 3_000)

    (small_count, small_peak), (count, peak) = peak_while_reading(small), peak_while_reading(large)

    assert (small_count, count) == (300, 3_000)
    assert size > 12_000_000
    assert peak < 1_000_000  # a few chunks and one transaction, not the file
    assert peak < small_peak + 100_000  # ten times the file, the same memory


def test_gzip_files_are_read(tmp_path):
    path = tmp_path / "day.xml.gz"
    path.write_bytes(gzip.compress(document(sale(1), sale(2))))

    assert [r["receipt_id"] for r in file_records(path)] == ["1", "2"]


def test_a_corrupt_gzip_file_is_a_source_error(tmp_path):
    path = tmp_path / "day.xml.gz"
    path.write_bytes(b"not gzip")

    with pytest.raises(SourceError, match=r"day\.xml\.gz: not a readable gzip file"):
        file_records(path)


def test_the_declared_encoding_is_honoured_and_a_stream_encoding_overrides_it(tmp_path):
    latin, undeclared, utf16 = tmp_path / "latin.xml", tmp_path / "cp1252.xml", tmp_path / "utf16.xml"
    text = document(sale(1, description="Blåbærsyltetøy 5 €")).decode()
    latin.write_bytes(text.replace("UTF-8", "ISO-8859-15").encode("iso-8859-15"))
    undeclared.write_bytes(text.split("\n", 1)[1].encode("cp1252"))  # no XML declaration: UTF-8 unless overridden
    utf16.write_bytes(text.replace("UTF-8", "UTF-16").encode("utf-16"))

    assert file_records(latin)[0]["lines"][0]["description"] == "Blåbærsyltetøy 5 €"
    assert file_records(undeclared, encoding="cp1252")[0]["lines"][0]["description"] == "Blåbærsyltetøy 5 €"
    assert file_records(utf16)[0]["lines"][0]["description"] == "Blåbærsyltetøy 5 €"


def test_damage_in_a_latin1_file_is_skipped_like_in_utf8():
    data = document(sale(1, description="Blåbær"), sale(2, description="Salt & Pepper"), sale(3)).decode()
    latin = data.replace("UTF-8", "ISO-8859-1").encode("latin-1")

    found = items(latin)

    assert receipt_ids(found) == ["1", "3"]
    assert found[0].record["lines"][0]["description"] == "Blåbær"  # type: ignore[union-attr]
    assert "Salt & Pepper" in rejects(found)[0].raw


# -- robustness -----------------------------------------------------------------------------------------------------


def check_items(found: list[Receipt | Rejected]) -> None:
    for item in found:
        if isinstance(item, Receipt):
            assert item.record["receipt_id"] and item.record["lines"]
        else:
            assert isinstance(item, Rejected) and item.reason and len(item.raw) <= poslog.RAW_LIMIT


@settings(max_examples=300)
@given(data=st.binary(max_size=400))
def test_arbitrary_bytes_give_rejects_or_nothing_never_a_crash(data):
    check_items(items(data))


@settings(max_examples=300)
@given(text=st.text(alphabet=st.sampled_from(list("<>/&;!?[]=\"' \nxTransactionPOSLog:%-#")), max_size=300))
def test_arbitrary_markup_after_a_poslog_start_tag_gives_receipts_or_rejects(text):
    check_items(items(b"<POSLog>" + text.encode() + b"<Transaction>" + text.encode()))


ORIGINAL = [sale(1), sale(2), sale(3), sale(4)]


def outline(found: list[Receipt | Rejected]) -> list[tuple[int, Any]]:
    return [(item.line, item.record if isinstance(item, Receipt) else item.raw) for item in found]


@st.composite
def damaged(draw: st.DrawFn) -> tuple[bytes, int]:
    """The sample with a few bytes replaced, inserted or deleted, and the offset of the first change."""
    data = document(*ORIGINAL)
    edits = draw(
        st.lists(st.tuples(st.integers(0, len(data)), st.integers(0, 8), st.binary(max_size=8)), min_size=1, max_size=4)
    )
    for at, cut, insert in sorted(edits, reverse=True):  # from the end, so that earlier offsets stay put
        data = data[:at] + insert + data[at + cut :]
    return data, min(at for at, _, _ in edits)


@settings(max_examples=200)
@given(case=damaged(), chunk=st.integers(1, 300))
def test_a_damaged_file_reads_the_same_in_any_chunk_size_and_loses_nothing_before_the_damage(case, chunk):
    data, first_change = case

    found = items(data, chunk_size=chunk)

    check_items(found)
    assert outline(found) == outline(items(data))  # expat may word an error differently when fed in pieces
    intact = [str(n) for n in (1, 2, 3, 4) if len(HEAD) + len("".join(ORIGINAL[:n])) <= first_change]
    assert receipt_ids(found)[: len(intact)] == intact


# -- settings -------------------------------------------------------------------------------------------------------


def test_format_poslog_is_a_stream_setting_and_xml_files_are_poslog_by_default():
    settings_ = FilesSettings(streams={"receipts": {"paths": ["pos/*.xml.gz"], "format": "poslog"}})

    assert settings_.stream_settings()["receipts"].format == "poslog"
    assert detect_format("pos/day.XML.gz", "auto") == "poslog"
    assert detect_format("pos/day.txt", "poslog") == "poslog"


@pytest.mark.parametrize("option", [{"delimiter": ";"}, {"columns": ["a"]}])
def test_csv_options_are_refused_for_poslog(option):
    with pytest.raises(ValidationError, match="columns and delimiter apply to CSV files only"):
        FilesSettings(paths=["a.xml"], format="poslog", **option)
