"""Fixed vocabulary of the demo data set: names, places and a home-and-garden chain's assortment.

Tables are plain text parsed once at import, so they read like the lists they are. The generator's output
depends only on the seed and on this file.
"""

from __future__ import annotations

from dataclasses import dataclass

CHAIN = "Nordhjem"


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


def _items(text: str) -> tuple[str, ...]:
    """Comma-separated items, which may hold spaces."""
    return tuple(item.strip() for item in text.split(",") if item.strip())


def _table(text: str) -> list[list[str]]:
    """Rows of a ``|``-separated table, cells stripped; blank lines skipped."""
    return [[cell.strip() for cell in line.split("|")] for line in text.strip().splitlines()]


FEMALE_NAMES = _words(
    """
Anne Inger Kari Marit Ingrid Liv Eva Berit Astrid Bjørg Hilde Anna Solveig Marianne Randi Ida Nina
Maria Elisabeth Kristin Bente Heidi Silje Hanne Gunn Tone Camilla Ragnhild Ellen Nora Emma Sara
Ingeborg Thea Sofie Julie Maja Tuva Kjersti Åse Sigrid Mari Linn Stine Trine Wenche Synnøve
"""
)

MALE_NAMES = _words(
    """
Jan Per Bjørn Ole Lars Kjell Knut Arne Svein Thomas Hans Geir Tor Morten Terje Odd Erik Martin
Andreas John Anders Rune Trond Jon Tore Harald Espen Magnus Henrik Jonas Kristian Emil Sindre Even
Håkon Øyvind Stian Eirik Vegard Sverre Ståle Jørgen Aksel Filip Sondre Torbjørn Frode
"""
)

LAST_NAMES = _words(
    """
Hansen Johansen Olsen Larsen Andersen Pedersen Nilsen Kristiansen Jensen Karlsen Johnsen Pettersen
Eriksen Berg Haugen Hagen Johannessen Andreassen Jacobsen Dahl Jørgensen Halvorsen Henriksen Lund
Sørensen Jakobsen Moen Gundersen Iversen Strand Solberg Svendsen Eide Knutsen Martinsen Paulsen
Bakken Kristoffersen Mathisen Lie Amundsen Nguyen Rasmussen Ali Lunde Solheim Berge Moe Nygård Bakke
Kristensen Fredriksen Holm Lien Hauge Christensen Andresen Nielsen Knudsen Evensen Sæther Aas Myhre
Hanssen Ahmed Haugland Thomassen Sivertsen Simonsen Danielsen Berntsen Sandvik Rønning Arnesen
Antonsen Næss Vik Haug Ellingsen Thorsen Edvardsen Birkeland Isaksen Gulbrandsen Ødegård Wold Fjeld
Aasen Kaur Khan Nordmann Sætre Tangen Brekke Aune
"""
)
EMAIL_DOMAINS: tuple[tuple[str, int], ...] = (  # domain, share
    ("gmail.com", 34), ("hotmail.com", 16), ("online.no", 10), ("outlook.com", 8), ("icloud.com", 7),
    ("live.no", 5), ("yahoo.no", 4), ("hotmail.no", 4), ("getmail.no", 3), ("altibox.no", 3),
    ("broadpark.no", 2), ("lyse.net", 2), ("me.com", 2),
)  # fmt: skip
STREETS = _items(
    """
Storgata, Kirkegata, Skolegata, Parkveien, Kirkeveien, Industriveien, Skogveien, Solbakken,
Fjordveien, Strandveien, Bjørkeveien, Granveien, Furuveien, Eikeveien, Lønneveien, Bakkeveien,
Haugveien, Nedre gate, Øvre gate, Torggata, Jernbanegata, Sjøgata, Havnegata, Markveien, Åsveien,
Lia, Tunet, Hagebyveien, Elveveien, Stasjonsveien, Gamle kongevei, Utsikten
"""
)
COMPANY_WORDS = _words(
    """
Bygg Eiendom Snekkeri Maler Rør Elektro Hage Anlegg Tak Entreprenør Boligservice Vaktmester Interiør
Montasje
"""
)
COMPANY_FORMS = ("AS", "AS", "AS", "ENK", "DA")  # mostly limited companies


@dataclass(frozen=True, slots=True)
class City:
    name: str
    region: str
    postcode: int  # the first of the city's postcodes
    weight: int  # share of people and stores
    districts: tuple[str, ...] = ()


def _city(name: str, region: str, postcode: str, weight: str, districts: str = "") -> City:
    return City(name, region, int(postcode), int(weight), _items(districts))


# city | region | first postcode | weight | districts (the names of its stores when it has several)
CITIES = tuple(
    _city(*row)
    for row in _table(
        """
Oslo         | Oslo            |  150 | 30 | Storo, Alnabru, Ryen, Majorstuen, Skøyen, Bryn, Furuset, Økern
Bergen       | Vestland        | 5003 | 16 | Åsane, Laksevåg, Fyllingsdalen, Nesttun, Sandsli
Trondheim    | Trøndelag       | 7010 | 12 | Lade, Heimdal, Tiller, Moholt
Stavanger    | Rogaland        | 4006 |  8 | Forus, Madla, Hillevåg
Sandnes      | Rogaland        | 4306 |  4
Kristiansand | Agder           | 4610 |  6 | Sørlandsparken, Vågsbygd
Drammen      | Buskerud        | 3015 |  6 | Gulskogen, Åssiden
Fredrikstad  | Østfold         | 1606 |  5
Sarpsborg    | Østfold         | 1706 |  3
Tromsø       | Troms           | 9008 |  4 | Langnes, Tomasjord
Skien        | Telemark        | 3724 |  3
Porsgrunn    | Telemark        | 3915 |  2
Ålesund      | Møre og Romsdal | 6002 |  3
Molde        | Møre og Romsdal | 6413 |  2
Kristiansund | Møre og Romsdal | 6509 |  2
Tønsberg     | Vestfold        | 3126 |  3
Sandefjord   | Vestfold        | 3210 |  3
Larvik       | Vestfold        | 3256 |  2
Moss         | Østfold         | 1530 |  2
Haugesund    | Rogaland        | 5527 |  2
Bodø         | Nordland        | 8006 |  3
Arendal      | Agder           | 4836 |  2
Hamar        | Innlandet       | 2317 |  2
Lillehammer  | Innlandet       | 2609 |  2
Gjøvik       | Innlandet       | 2815 |  2
Halden       | Østfold         | 1767 |  2
Kongsberg    | Buskerud        | 3611 |  2
Lillestrøm   | Akershus        | 2000 |  4 | Strømmen
Jessheim     | Akershus        | 2050 |  2
Ski          | Akershus        | 1400 |  2
Asker        | Akershus        | 1383 |  3
Sandvika     | Akershus        | 1337 |  3
Elverum      | Innlandet       | 2406 |  1
Harstad      | Troms           | 9405 |  1
Alta         | Finnmark        | 9510 |  1
Narvik       | Nordland        | 8514 |  1
Mo i Rana    | Nordland        | 8622 |  1
Steinkjer    | Trøndelag       | 7713 |  1
Førde        | Vestland        | 6800 |  1
Leirvik      | Vestland        | 5411 |  1
Grimstad     | Agder           | 4876 |  1
Horten       | Vestfold        | 3187 |  1
Kongsvinger  | Innlandet       | 2211 |  1
Hønefoss     | Buskerud        | 3510 |  1
Mandal       | Agder           | 4515 |  1
Egersund     | Rogaland        | 4370 |  1
Voss         | Vestland        | 5700 |  1
Notodden     | Telemark        | 3674 |  1
Stjørdal     | Trøndelag       | 7500 |  1
Levanger     | Trøndelag       | 7600 |  1
Namsos       | Trøndelag       | 7800 |  1
Ørsta        | Møre og Romsdal | 6150 |  1
Florø        | Vestland        | 6900 |  1
Hammerfest   | Finnmark        | 9600 |  1
Finnsnes     | Troms           | 9300 |  1
Sogndal      | Vestland        | 6856 |  1
Kragerø      | Telemark        | 3770 |  1
Orkanger     | Trøndelag       | 7300 |  1
"""
    )
)
FALLBACK_DISTRICTS = ("Sentrum", "Nord", "Sør", "Øst", "Vest")


@dataclass(frozen=True, slots=True)
class Kind:
    """A kind of product: its PIM category, its Norwegian name and its price range in whole kroner."""

    category: str
    name: str
    low: int
    high: int


def _kinds(text: str) -> tuple[Kind, ...]:
    return tuple(Kind(category, name, int(low), int(high)) for category, name, low, high in _table(text))


@dataclass(frozen=True, slots=True)
class Group:
    """A product group: main products, the accessories sold with them, and when people buy them."""

    code: str  # SKU prefix
    season: tuple[float, ...]  # weight per month, January first
    brands: tuple[str, ...]
    main: tuple[Kind, ...]
    accessories: tuple[Kind, ...]
    cross_sell: tuple[str, ...]  # groups whose main products are suggested with this group's
    weight: float  # share of the assortment and of first lines


GROUPS: dict[str, Group] = {
    "grills": Group(
        code="GRL",
        season=(0.3, 0.3, 0.6, 1.4, 2.2, 2.0, 1.4, 0.9, 0.5, 0.3, 0.3, 0.5),
        brands=("Glød", "Flammekraft", "Ildsjel", "Røykeriet", CHAIN),
        main=_kinds(
            """
            Gas grills        | Gassgrill                 |  2990 | 24990
            Charcoal grills   | Kullgrill                 |   499 |  4990
            Kamado grills     | Kamadogrill               |  7990 | 19990
            Pellet grills     | Pelletsgrill              |  9990 | 29990
            Electric grills   | Elektrisk grill           |  1490 |  5990
            """
        ),
        accessories=_kinds(
            """
            Grill covers      | Grilltrekk                |   299 |   999
            Grill tools       | Grillbestikk              |   199 |   799
            Grill brushes     | Grillbørste               |    99 |   349
            Thermometers      | Steketermometer           |   199 |   899
            Charcoal          | Grillkull 10 kg           |   129 |   249
            Gas regulators    | Gassregulator             |   199 |   449
            Pizza stones      | Pizzastein                |   299 |   699
            """
        ),
        cross_sell=("outdoor_furniture", "kitchen"),
        weight=1.0,
    ),
    "paint": Group(
        code="PNT",
        season=(0.6, 0.6, 0.8, 1.1, 1.6, 1.8, 1.6, 1.2, 0.9, 0.7, 0.6, 0.5),
        brands=("Fargeverket", "Strøk", "Nordfarge", "Penselverk", CHAIN),
        main=_kinds(
            """
            Interior paint    | Interiørmaling 2,7 L      |   399 |  1199
            Exterior paint    | Utendørsmaling 9 L        |   899 |  2499
            Wood stain        | Beis 3 L                  |   349 |   899
            Primer            | Grunning 3 L              |   299 |   699
            Floor paint       | Gulvmaling 3 L            |   499 |  1099
            """
        ),
        accessories=_kinds(
            """
            Brushes           | Pensel                    |    49 |   299
            Rollers           | Malerull                  |    79 |   249
            Paint trays       | Malerbrett                |    39 |   129
            Masking tape      | Maskeringstape            |    39 |   119
            Drop cloths       | Dekkplast                 |    49 |   199
            Sandpaper         | Sandpapir 10-pk           |    59 |   149
            """
        ),
        cross_sell=("power_tools", "storage"),
        weight=1.2,
    ),
    "power_tools": Group(
        code="PWT",
        season=(0.8, 0.8, 0.9, 1.0, 1.0, 0.9, 0.8, 0.9, 1.0, 1.0, 1.4, 2.0),
        brands=("Kraftverk", "Jernhand", "Volt Pro", "Borr", CHAIN),
        main=_kinds(
            """
            Drills            | Drill                     |   799 |  3499
            Impact drivers    | Slagtrekker               |   999 |  2999
            Circular saws     | Sirkelsag                 |  1299 |  4499
            Jigsaws           | Stikksag                  |   799 |  2499
            Angle grinders    | Vinkelsliper              |   599 |  2299
            Sanders           | Slipemaskin               |   699 |  2499
            """
        ),
        accessories=_kinds(
            """
            Drill bits        | Borsett                   |   149 |   699
            Saw blades        | Sagblad                   |   199 |   599
            Batteries         | Batteri 18V               |   599 |  1499
            Chargers          | Lader                     |   399 |   999
            Sanding discs     | Slipepapir                |    79 |   249
            Tool cases        | Verktøykoffert            |   299 |   899
            """
        ),
        cross_sell=("storage", "paint"),
        weight=1.1,
    ),
    "garden": Group(
        code="GRD",
        season=(0.2, 0.3, 0.8, 1.8, 2.2, 1.8, 1.2, 0.9, 0.8, 0.5, 0.2, 0.2),
        brands=("Grønn Tomme", "Plenmester", "Hagekraft", "Spire", CHAIN),
        main=_kinds(
            """
            Lawn mowers       | Gressklipper              |  2490 | 14990
            Robotic mowers    | Robotgressklipper         |  7990 | 29990
            Hedge trimmers    | Hekksaks                  |   899 |  3990
            Pressure washers  | Høytrykkspyler            |  1290 |  6990
            Wheelbarrows      | Trillebår                 |   699 |  1990
            Garden hoses      | Hageslange 25 m           |   299 |   899
            """
        ),
        accessories=_kinds(
            """
            Trimmer line      | Trimmertråd               |    99 |   249
            Mower blades      | Kniv til gressklipper     |   199 |   499
            Hose nozzles      | Spylepistol               |    99 |   349
            Garden gloves     | Hagehansker               |    49 |   199
            Fertiliser        | Plengjødsel 10 kg         |   199 |   449
            Cleaning agents   | Rens til høytrykkspyler   |   129 |   299
            """
        ),
        cross_sell=("outdoor_furniture", "power_tools"),
        weight=1.0,
    ),
    "kitchen": Group(
        code="KIT",
        season=(0.9, 0.8, 0.9, 0.9, 0.9, 0.8, 0.7, 0.8, 0.9, 1.0, 1.3, 1.8),
        brands=("Kokkelur", "Stekt", "Fjellkjøkken", CHAIN),
        main=_kinds(
            """
            Faucets           | Kjøkkenbatteri            |   999 |  4999
            Range hoods       | Kjøkkenvifte              |  2490 |  9990
            Sinks             | Kjøkkenvask               |  1490 |  5990
            Cookware          | Stekepanne                |   299 |  1499
            Coffee makers     | Kaffetrakter              |   699 |  3499
            """
        ),
        accessories=_kinds(
            """
            Filters           | Fettfilter                |   149 |   399
            Cleaning          | Rengjøringsmiddel         |    49 |   149
            Knife sharpeners  | Knivsliper                |   149 |   599
            Coffee filters    | Kaffefilter               |    29 |    79
            Sink strainers    | Silkurv                   |    49 |   149
            """
        ),
        cross_sell=("lighting", "bathroom"),
        weight=0.8,
    ),
    "lighting": Group(
        code="LGT",
        season=(1.3, 1.0, 0.8, 0.7, 0.6, 0.5, 0.5, 0.7, 0.9, 1.3, 1.6, 1.9),
        brands=("Lysverket", "Nordlys Design", "Glimt", CHAIN),
        main=_kinds(
            """
            Ceiling lights    | Taklampe                  |   399 |  2999
            Floor lamps       | Gulvlampe                 |   599 |  2999
            Outdoor lights    | Utelampe                  |   299 |  1999
            LED strips        | LED-list 5 m              |   299 |   999
            Spotlights        | Downlight 6-pk            |   499 |  1999
            """
        ),
        accessories=_kinds(
            """
            Bulbs             | LED-pære                  |    49 |   199
            Dimmers           | Dimmer                    |   299 |   799
            Extension cords   | Skjøteledning             |    99 |   349
            Timers            | Tidsbryter                |    99 |   299
            """
        ),
        cross_sell=("kitchen", "heating"),
        weight=0.8,
    ),
    "bathroom": Group(
        code="BTH",
        season=(1.0, 1.0, 1.1, 1.0, 0.9, 0.8, 0.7, 0.9, 1.1, 1.1, 1.0, 0.7),
        brands=("Våtrom", "Badekunst", "Fjellbad", CHAIN),
        main=_kinds(
            """
            Shower sets       | Dusjsett                  |   999 |  4999
            Basin mixers      | Servantbatteri            |   799 |  3499
            Toilets           | Toalett                   |  2490 |  7990
            Bathroom cabinets | Baderomsskap              |  1490 |  6990
            """
        ),
        accessories=_kinds(
            """
            Sealants          | Våtromssilikon            |    89 |   199
            Shower hoses      | Dusjslange                |   149 |   399
            Toilet seats      | Toalettsete               |   299 |   999
            Mirrors           | Speil                     |   299 |  1499
            """
        ),
        cross_sell=("kitchen", "lighting"),
        weight=0.6,
    ),
    "outdoor_furniture": Group(
        code="OFN",
        season=(0.2, 0.3, 0.7, 1.6, 2.1, 2.0, 1.4, 0.8, 0.5, 0.3, 0.2, 0.2),
        brands=("Terrasse", "Sommerro", "Fjordliv", CHAIN),
        main=_kinds(
            """
            Lounge sets       | Loungesett                |  4990 | 19990
            Dining sets       | Hagemøbelsett             |  2990 | 14990
            Parasols          | Parasoll                  |   699 |  3990
            Sun loungers      | Solseng                   |   799 |  2990
            """
        ),
        accessories=_kinds(
            """
            Cushions          | Putesett                  |   199 |   999
            Furniture covers  | Møbeltrekk                |   299 |   899
            Wood oil          | Møbelolje 1 L             |   149 |   349
            Parasol bases     | Parasollfot               |   299 |   999
            """
        ),
        cross_sell=("grills", "garden"),
        weight=0.7,
    ),
    "heating": Group(
        code="HEA",
        season=(2.0, 1.6, 1.1, 0.7, 0.4, 0.3, 0.3, 0.5, 0.9, 1.6, 1.9, 1.9),
        brands=("Varmeverk", "Peiskos", "Nordvarme", CHAIN),
        main=_kinds(
            """
            Heat pumps        | Varmepumpe                |  9990 | 29990
            Panel heaters     | Panelovn                  |   999 |  3990
            Wood stoves       | Vedovn                    |  7990 | 24990
            Fan heaters       | Vifteovn                  |   299 |   999
            """
        ),
        accessories=_kinds(
            """
            Firewood          | Ved 40 L                  |    99 |   149
            Fire starters     | Opptenningsbriketter      |    39 |    99
            Thermostats       | Termostat                 |   299 |  1199
            Heat pump filters | Filter til varmepumpe     |   199 |   499
            """
        ),
        cross_sell=("lighting", "power_tools"),
        weight=0.7,
    ),
    "storage": Group(
        code="STO",
        season=(1.1, 1.0, 1.1, 1.1, 1.0, 0.9, 0.8, 1.0, 1.1, 1.0, 0.9, 0.8),
        brands=("Ordning", "Rom & Reol", CHAIN),
        main=_kinds(
            """
            Shelving          | Reol                      |   499 |  2990
            Tool chests       | Verktøyskap               |  1490 |  7990
            Sheds             | Redskapsbod               |  4990 | 24990
            """
        ),
        accessories=_kinds(
            """
            Storage boxes     | Oppbevaringsboks          |    59 |   299
            Hooks             | Krokersett                |    49 |   199
            Shelf brackets    | Hyllebærere               |    39 |   149
            """
        ),
        cross_sell=("power_tools", "garden"),
        weight=0.6,
    ),
}
MODEL_WORDS = _words("Classic Pro Basic Plus Max Compact Premium Eco Sport Original")
