"""The countries of the registry: the one table behind every `country` field.

The rule, the same on every path (the API's bodies and filters, import rows, dump loads, the
breakdowns' labels): a country is an ISO 3166-1 alpha-2 code, in any case and kept in upper
case, out of the 249 officially assigned codes plus `XK`, the user-assigned code for Kosovo in
common use (the European Commission, Wikidata). The other user-assigned codes (`AA`,
`QM`–`QZ`, `XA`–`XZ` but `XK`, `ZZ`) are refused: `ZZ` means "unknown", and an unknown country
is an empty `country`, so a breakdown shows one "Unknown" and not two.

A table in the code rather than `pycountry`: the labels want the common English name
("Bolivia", "South Korea"), where pycountry carries the official one ("Bolivia, Plurinational
State of"), it has no `XK`, and it brings translation catalogues the service never reads.
"""

from __future__ import annotations

from app.text import fold

_TABLE = """\
AD Andorra
AE United Arab Emirates
AF Afghanistan
AG Antigua and Barbuda
AI Anguilla
AL Albania
AM Armenia
AO Angola
AQ Antarctica
AR Argentina
AS American Samoa
AT Austria
AU Australia
AW Aruba
AX Åland Islands
AZ Azerbaijan
BA Bosnia and Herzegovina
BB Barbados
BD Bangladesh
BE Belgium
BF Burkina Faso
BG Bulgaria
BH Bahrain
BI Burundi
BJ Benin
BL Saint Barthélemy
BM Bermuda
BN Brunei
BO Bolivia
BQ Bonaire, Sint Eustatius and Saba
BR Brazil
BS Bahamas
BT Bhutan
BV Bouvet Island
BW Botswana
BY Belarus
BZ Belize
CA Canada
CC Cocos (Keeling) Islands
CD Democratic Republic of the Congo
CF Central African Republic
CG Republic of the Congo
CH Switzerland
CI Côte d'Ivoire
CK Cook Islands
CL Chile
CM Cameroon
CN China
CO Colombia
CR Costa Rica
CU Cuba
CV Cabo Verde
CW Curaçao
CX Christmas Island
CY Cyprus
CZ Czechia
DE Germany
DJ Djibouti
DK Denmark
DM Dominica
DO Dominican Republic
DZ Algeria
EC Ecuador
EE Estonia
EG Egypt
EH Western Sahara
ER Eritrea
ES Spain
ET Ethiopia
FI Finland
FJ Fiji
FK Falkland Islands
FM Micronesia
FO Faroe Islands
FR France
GA Gabon
GB United Kingdom
GD Grenada
GE Georgia
GF French Guiana
GG Guernsey
GH Ghana
GI Gibraltar
GL Greenland
GM Gambia
GN Guinea
GP Guadeloupe
GQ Equatorial Guinea
GR Greece
GS South Georgia and the South Sandwich Islands
GT Guatemala
GU Guam
GW Guinea-Bissau
GY Guyana
HK Hong Kong
HM Heard Island and McDonald Islands
HN Honduras
HR Croatia
HT Haiti
HU Hungary
ID Indonesia
IE Ireland
IL Israel
IM Isle of Man
IN India
IO British Indian Ocean Territory
IQ Iraq
IR Iran
IS Iceland
IT Italy
JE Jersey
JM Jamaica
JO Jordan
JP Japan
KE Kenya
KG Kyrgyzstan
KH Cambodia
KI Kiribati
KM Comoros
KN Saint Kitts and Nevis
KP North Korea
KR South Korea
KW Kuwait
KY Cayman Islands
KZ Kazakhstan
LA Laos
LB Lebanon
LC Saint Lucia
LI Liechtenstein
LK Sri Lanka
LR Liberia
LS Lesotho
LT Lithuania
LU Luxembourg
LV Latvia
LY Libya
MA Morocco
MC Monaco
MD Moldova
ME Montenegro
MF Saint Martin
MG Madagascar
MH Marshall Islands
MK North Macedonia
ML Mali
MM Myanmar
MN Mongolia
MO Macao
MP Northern Mariana Islands
MQ Martinique
MR Mauritania
MS Montserrat
MT Malta
MU Mauritius
MV Maldives
MW Malawi
MX Mexico
MY Malaysia
MZ Mozambique
NA Namibia
NC New Caledonia
NE Niger
NF Norfolk Island
NG Nigeria
NI Nicaragua
NL Netherlands
NO Norway
NP Nepal
NR Nauru
NU Niue
NZ New Zealand
OM Oman
PA Panama
PE Peru
PF French Polynesia
PG Papua New Guinea
PH Philippines
PK Pakistan
PL Poland
PM Saint Pierre and Miquelon
PN Pitcairn
PR Puerto Rico
PS Palestine
PT Portugal
PW Palau
PY Paraguay
QA Qatar
RE Réunion
RO Romania
RS Serbia
RU Russia
RW Rwanda
SA Saudi Arabia
SB Solomon Islands
SC Seychelles
SD Sudan
SE Sweden
SG Singapore
SH Saint Helena, Ascension and Tristan da Cunha
SI Slovenia
SJ Svalbard and Jan Mayen
SK Slovakia
SL Sierra Leone
SM San Marino
SN Senegal
SO Somalia
SR Suriname
SS South Sudan
ST São Tomé and Príncipe
SV El Salvador
SX Sint Maarten
SY Syria
SZ Eswatini
TC Turks and Caicos Islands
TD Chad
TF French Southern Territories
TG Togo
TH Thailand
TJ Tajikistan
TK Tokelau
TL Timor-Leste
TM Turkmenistan
TN Tunisia
TO Tonga
TR Türkiye
TT Trinidad and Tobago
TV Tuvalu
TW Taiwan
TZ Tanzania
UA Ukraine
UG Uganda
UM United States Minor Outlying Islands
US United States
UY Uruguay
UZ Uzbekistan
VA Holy See
VC Saint Vincent and the Grenadines
VE Venezuela
VG British Virgin Islands
VI United States Virgin Islands
VN Vietnam
VU Vanuatu
WF Wallis and Futuna
WS Samoa
XK Kosovo
YE Yemen
YT Mayotte
ZA South Africa
ZM Zambia
ZW Zimbabwe
"""

COUNTRY_NAMES: dict[str, str] = {line[:2]: line[3:] for line in _TABLE.splitlines() if line.strip()}
COUNTRIES = frozenset(COUNTRY_NAMES)
NOT_A_COUNTRY = "not an ISO 3166-1 alpha-2 code"


def country_code(value: str) -> str | None:
    """The code as kept (upper case) when `value` is a country of the table, else None."""
    code = value.strip().upper()
    return code if code in COUNTRIES else None


def country_name(code: str) -> str:
    """The English name of an alpha-2 code; an unknown code is its own label."""
    return COUNTRY_NAMES.get(code.upper(), code)


def country_names() -> list[str]:
    """Every English name in the table (what a name's country words are looked up in)."""
    return list(COUNTRY_NAMES.values())


# Names people type in a country column instead of the code: the English names of the table,
# the usual short forms, and the French, German and Spanish names of the countries whose lists
# are most often kept in those languages. Only suggestions: a name is never taken as a code.
_OTHER_NAMES = {
    "UK": "GB", "United Kingdom": "GB", "Great Britain": "GB", "Britain": "GB", "England": "GB",
    "Scotland": "GB", "Wales": "GB", "Northern Ireland": "GB", "USA": "US", "US": "US",
    "United States of America": "US", "America": "US", "EL": "GR", "Holland": "NL",
    "Royaume-Uni": "GB", "Vereinigtes Königreich": "GB", "Reino Unido": "GB", "Grossbritannien": "GB",
    "États-Unis": "US", "Vereinigte Staaten": "US", "Estados Unidos": "US",
    "Allemagne": "DE", "Deutschland": "DE", "Alemania": "DE",
    "Espagne": "ES", "Spanien": "ES", "España": "ES",
    "Italie": "IT", "Italien": "IT", "Italia": "IT",
    "Frankreich": "FR", "Francia": "FR",
    "Belgique": "BE", "Belgien": "BE", "Bélgica": "BE",
    "Suisse": "CH", "Schweiz": "CH", "Suiza": "CH",
    "Pays-Bas": "NL", "Niederlande": "NL", "Países Bajos": "NL",
    "Autriche": "AT", "Österreich": "AT",
    "Irlande": "IE", "Irland": "IE", "Irlanda": "IE",
    "Pologne": "PL", "Polen": "PL", "Polonia": "PL",
    "Suède": "SE", "Schweden": "SE", "Suecia": "SE",
    "Norvège": "NO", "Norwegen": "NO", "Noruega": "NO",
    "Danemark": "DK", "Dänemark": "DK", "Dinamarca": "DK",
    "Finlande": "FI", "Finnland": "FI", "Finlandia": "FI",
    "Grèce": "GR", "Griechenland": "GR", "Grecia": "GR",
    "Turquie": "TR", "Türkei": "TR", "Turquía": "TR",
    "Russie": "RU", "Russland": "RU", "Rusia": "RU",
    "Chine": "CN", "Japon": "JP", "Japón": "JP", "Inde": "IN", "Indien": "IN",
    "Brésil": "BR", "Brasilien": "BR", "Brasil": "BR", "Mexique": "MX", "Mexiko": "MX", "México": "MX",
    "Kanada": "CA", "Australie": "AU", "Australien": "AU", "Maroc": "MA", "Marokko": "MA",
    "Marruecos": "MA", "Algérie": "DZ", "Algerien": "DZ", "Argelia": "DZ", "Tunisie": "TN",
    "Tunesien": "TN", "Túnez": "TN", "Sénégal": "SN", "Luxemburg": "LU", "Luxemburgo": "LU",
    "Tchéquie": "CZ", "Tschechien": "CZ", "Chequia": "CZ", "Hongrie": "HU", "Ungarn": "HU",
    "Hungría": "HU", "Roumanie": "RO", "Rumänien": "RO", "Rumania": "RO", "Ukraine": "UA",
    "Ucrania": "UA",
}  # fmt: skip


_BY_NAME: dict[str, str] = {
    **{fold(name): code for code, name in COUNTRY_NAMES.items()},
    **{fold(name): code for name, code in _OTHER_NAMES.items()},
}


def suggest_code(value: str) -> str | None:
    """The code a country name or a common short form means ("France", "Deutschland", "UK"),
    for an error message's "did you mean"; None when the value names no country known here."""
    return _BY_NAME.get(fold(value))
