"""The API v2.0 entities the Business Central emulator serves: their properties (as the API reference lists them)
and the realistic defaults a record created through the control API gets."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from hub_plugins.business_central._odata import EntityType

S, G, T, D, N, B, I = "string", "guid", "datetime", "date", "decimal", "bool", "int"  # noqa: E741

_ADDRESS = {"addressLine1": S, "addressLine2": S, "city": S, "state": S, "country": S, "postalCode": S}

COMPANY = EntityType(
    "company",
    {
        "id": G, "systemVersion": S, "timestamp": I, "name": S, "displayName": S, "businessProfileId": S,
        "systemCreatedAt": T, "systemCreatedBy": G, "systemModifiedAt": T, "systemModifiedBy": G,
    },
)  # fmt: skip

CUSTOMER = EntityType(
    "customer",
    {
        "id": G, "number": S, "displayName": S, "type": S, **_ADDRESS, "phoneNumber": S, "email": S, "website": S,
        "salespersonCode": S, "balanceDue": N, "creditLimit": N, "taxLiable": B, "taxAreaId": G,
        "taxAreaDisplayName": S, "taxRegistrationNumber": S, "currencyId": G, "currencyCode": S,
        "paymentTermsId": G, "shipmentMethodId": G, "paymentMethodId": G, "blocked": S, "lastModifiedDateTime": T,
    },
)  # fmt: skip

CONTACT = EntityType(
    "contact",
    {
        "id": G, "number": S, "type": S, "displayName": S, "jobTitle": S, "companyNumber": S, "companyName": S,
        "contactBusinessRelation": S, **_ADDRESS, "phoneNumber": S, "mobilePhoneNumber": S, "email": S,
        "website": S, "searchName": S, "privacyBlocked": B, "taxRegistrationNumber": S, "lastInteractionDate": D,
        "lastModifiedDateTime": T,
    },
)  # fmt: skip

ITEM = EntityType(
    "item",
    {
        "id": G, "number": S, "displayName": S, "displayName2": S, "type": S, "itemCategoryId": G,
        "itemCategoryCode": S, "blocked": B, "gtin": S, "inventory": N, "unitPrice": N, "priceIncludesTax": B,
        "unitCost": N, "taxGroupId": G, "taxGroupCode": S, "baseUnitOfMeasureId": G, "baseUnitOfMeasureCode": S,
        "generalProductPostingGroupCode": S, "inventoryPostingGroupCode": S, "lastModifiedDateTime": T,
    },
)  # fmt: skip

_DOCUMENT = {
    "id": G, "number": S, "externalDocumentNumber": S, "postingDate": D, "dueDate": D, "customerId": G,
    "customerNumber": S, "customerName": S, "billToName": S, "billToCustomerId": G, "billToCustomerNumber": S,
    "shipToName": S, "shipToContact": S, "sellToAddressLine1": S, "sellToAddressLine2": S, "sellToCity": S,
    "sellToCountry": S, "sellToState": S, "sellToPostCode": S, "currencyId": G, "currencyCode": S,
    "paymentTermsId": G, "shipmentMethodId": G, "salesperson": S, "pricesIncludeTax": B, "discountAmount": N,
    "discountAppliedBeforeTax": B, "totalAmountExcludingTax": N, "totalTaxAmount": N, "totalAmountIncludingTax": N,
    "status": S, "lastModifiedDateTime": T, "phoneNumber": S, "email": S,
}  # fmt: skip

SALES_INVOICE = EntityType(
    "salesInvoice",
    {
        **_DOCUMENT, "invoiceDate": D, "promisedPayDate": D, "customerPurchaseOrderReference": S, "orderId": G,
        "orderNumber": S,
    },
    frozenset({"salesInvoiceLines", "customer"}),
)  # fmt: skip

SALES_CREDIT_MEMO = EntityType(
    "salesCreditMemo",
    {**_DOCUMENT, "creditMemoDate": D, "invoiceId": G, "invoiceNumber": S, "customerReturnReasonId": G},
    frozenset({"salesCreditMemoLines", "customer"}),
)

_LINE = {
    "id": G, "documentId": G, "sequence": I, "itemId": G, "accountId": G, "lineType": S, "lineObjectNumber": S,
    "description": S, "description2": S, "unitOfMeasureId": G, "unitOfMeasureCode": S, "quantity": N,
    "unitPrice": N, "discountAmount": N, "discountPercent": N, "discountAppliedBeforeTax": B,
    "amountExcludingTax": N, "taxCode": S, "taxPercent": N, "totalTaxAmount": N, "amountIncludingTax": N,
    "invoiceDiscountAllocation": N, "netAmount": N, "netTaxAmount": N, "netAmountIncludingTax": N,
    "shipmentDate": D, "itemVariantId": G, "locationId": G,
}  # fmt: skip

SALES_INVOICE_LINE = EntityType("salesInvoiceLine", _LINE)
SALES_CREDIT_MEMO_LINE = EntityType("salesCreditMemoLine", _LINE)

#: Entity set name -> (type, lines navigation, lines type, default $orderby).
ENTITY_SETS: dict[str, tuple[EntityType, str | None, EntityType | None, str]] = {
    "customers": (CUSTOMER, None, None, "number"),
    "contacts": (CONTACT, None, None, "number"),
    "items": (ITEM, None, None, "number"),
    "salesInvoices": (SALES_INVOICE, "salesInvoiceLines", SALES_INVOICE_LINE, "number"),
    "salesCreditMemos": (SALES_CREDIT_MEMO, "salesCreditMemoLines", SALES_CREDIT_MEMO_LINE, "number"),
}

EMPTY = "00000000-0000-0000-0000-000000000000"
_CENT = Decimal("0.01")


def money(value: Decimal) -> float:
    return float(value.quantize(_CENT, rounding=ROUND_HALF_UP))


class Defaults:
    """Fills in a record created through the control API, numbering each entity as BC's number series would."""

    def __init__(self) -> None:
        self._numbers: dict[str, Iterator[int]] = {
            "customers": itertools.count(10000, 10),
            "contacts": itertools.count(100001),
            "items": itertools.count(1000),
            "salesInvoices": itertools.count(103001),
            "salesCreditMemos": itertools.count(104001),
        }

    def number(self, entity: str) -> str:
        prefix = {"contacts": "CT"}.get(entity, "")
        return f"{prefix}{next(self._numbers[entity])}"

    def record(self, entity: str, number: str, **given: Any) -> dict[str, Any]:
        base: dict[str, Any]
        if entity == "customers":
            base = {
                "number": number, "displayName": f"Kunde {number}", "type": "Person", "addressLine1": "Storgata 1",
                "addressLine2": "", "city": "Oslo", "state": "", "country": "NO", "postalCode": "0155",
                "phoneNumber": "", "email": f"kunde{number}@example.no", "website": "", "salespersonCode": "",
                "balanceDue": 0, "creditLimit": 0, "taxLiable": True, "taxAreaId": EMPTY, "taxAreaDisplayName": "",
                "taxRegistrationNumber": "", "currencyId": EMPTY, "currencyCode": "NOK", "paymentTermsId": EMPTY,
                "shipmentMethodId": EMPTY, "paymentMethodId": EMPTY, "blocked": " ",
            }  # fmt: skip
        elif entity == "contacts":
            base = {
                "number": number, "type": "Person", "displayName": f"Kontakt {number}", "jobTitle": "",
                "companyNumber": "", "companyName": "", "contactBusinessRelation": "Customer", "addressLine1": "",
                "addressLine2": "", "city": "", "state": "", "country": "NO", "postalCode": "", "phoneNumber": "",
                "mobilePhoneNumber": "", "email": f"kontakt{number.lower()}@example.no", "website": "",
                "searchName": "", "privacyBlocked": False, "taxRegistrationNumber": "", "lastInteractionDate": None,
            }  # fmt: skip
        elif entity == "items":
            base = {
                "number": number, "displayName": f"Vare {number}", "displayName2": "", "type": "Inventory",
                "itemCategoryId": EMPTY, "itemCategoryCode": "", "blocked": False, "gtin": "", "inventory": 10,
                "unitPrice": 199.0, "priceIncludesTax": True, "unitCost": 99.0, "taxGroupId": EMPTY,
                "taxGroupCode": "", "baseUnitOfMeasureId": EMPTY, "baseUnitOfMeasureCode": "STK",
                "generalProductPostingGroupCode": "VARER", "inventoryPostingGroupCode": "VARER",
            }  # fmt: skip
        else:
            base = {
                "number": number, "externalDocumentNumber": "", "postingDate": "2025-01-06", "dueDate": "2025-01-20",
                "customerId": EMPTY, "customerNumber": "", "customerName": "", "billToName": "",
                "billToCustomerId": EMPTY, "billToCustomerNumber": "", "shipToName": "", "shipToContact": "",
                "sellToAddressLine1": "", "sellToAddressLine2": "", "sellToCity": "", "sellToCountry": "NO",
                "sellToState": "", "sellToPostCode": "", "currencyId": EMPTY, "currencyCode": "NOK",
                "paymentTermsId": EMPTY, "shipmentMethodId": EMPTY, "salesperson": "", "pricesIncludeTax": True,
                "discountAmount": 0, "discountAppliedBeforeTax": True, "status": "Open", "phoneNumber": "",
                "email": "",
            }  # fmt: skip
            if entity == "salesInvoices":
                base |= {
                    "invoiceDate": "2025-01-06", "promisedPayDate": None, "customerPurchaseOrderReference": "",
                    "orderId": EMPTY, "orderNumber": "",
                }  # fmt: skip
            else:
                base |= {
                    "creditMemoDate": "2025-01-06", "invoiceId": EMPTY, "invoiceNumber": "",
                    "customerReturnReasonId": EMPTY,
                }  # fmt: skip
        base.update(given)
        return base


def line(document_id: str, sequence: int, given: Mapping[str, Any]) -> dict[str, Any]:
    """A document line with amounts computed from quantity, unit price and discount (prices include 25 % VAT)."""
    row: dict[str, Any] = {
        "documentId": document_id, "sequence": sequence * 10000, "itemId": EMPTY, "accountId": EMPTY,
        "lineType": "Item", "lineObjectNumber": "1000", "description": "Vare", "description2": "",
        "unitOfMeasureId": EMPTY, "unitOfMeasureCode": "STK", "quantity": 1, "unitPrice": 199.0,
        "discountAmount": 0, "discountPercent": 0, "discountAppliedBeforeTax": True, "taxCode": "MVA25",
        "taxPercent": 25, "invoiceDiscountAllocation": 0, "shipmentDate": "2025-01-06", "itemVariantId": EMPTY,
        "locationId": EMPTY,
    }  # fmt: skip
    row.update({k: v for k, v in given.items() if k not in ("documentId",)})
    if row["lineType"] == "Comment":
        row.update(quantity=0, unitPrice=0, lineObjectNumber="")
    gross = Decimal(str(row["quantity"])) * Decimal(str(row["unitPrice"])) - Decimal(str(row["discountAmount"]))
    net = gross / Decimal("1.25")
    row.update(
        amountIncludingTax=money(gross), amountExcludingTax=money(net), totalTaxAmount=money(gross - net),
        netAmount=money(net), netTaxAmount=money(gross - net), netAmountIncludingTax=money(gross),
    )  # fmt: skip
    return row


def totals(document: dict[str, Any], lines: list[dict[str, Any]]) -> None:
    gross = sum((Decimal(str(x["amountIncludingTax"])) for x in lines), Decimal(0))
    net = sum((Decimal(str(x["amountExcludingTax"])) for x in lines), Decimal(0))
    document.update(
        totalAmountIncludingTax=money(gross), totalAmountExcludingTax=money(net), totalTaxAmount=money(gross - net)
    )
