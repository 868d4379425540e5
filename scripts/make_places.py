#!/usr/bin/env python3
"""Builds presets/southern-libya.geojson: the southern Libya / Chad-Sudan
border watch region and the airfields inside it.

Run once (the output is committed and embedded in the binary):

    python3 scripts/make_places.py            # fetches airportsdata with pip
    python3 scripts/make_places.py airports.csv

The airfields come from the `airportsdata` PyPI package (MIT licence,
airports.csv: ICAO code, name, lat, lon). Every feature carries `source` and
`licence` properties. The region outline is drawn for this tool (public
domain, CC0): southern Libya south of 27.5N with the Tibesti and the
Libya-Chad border, and the Chad-Sudan border belt (20.5E-25.5E) from 10N to 19N.
"""

import csv
import glob
import json
import os
import subprocess
import sys
import tempfile
import zipfile

AIRPORTSDATA_VERSION = "20260905"

# Lon, lat, counter-clockwise (RFC 7946 exterior ring).
REGION = [
    [9.5, 24.0],
    [11.5, 23.0],
    [15.0, 19.5],
    [20.5, 19.0],
    [20.5, 10.0],
    [25.5, 10.0],
    [25.5, 27.5],
    [9.5, 27.5],
    [9.5, 24.0],
]

# Names that public reporting uses for some airfields, beside the dataset's.
ALIASES = {
    "HLKF": ["Kufra", "Kufrah", "Al Kufrah"],
    "HL56": ["Maaten al-Sarra", "Ma'tan as-Sarra", "Maaten al Sarra"],
    "HL57": ["Al Wigh", "Al Wig"],
    "HLLS": ["Sabha", "Sebha"],
    "HLGT": ["Ghat"],
    "HL79": ["Waw al-Kabir", "Wau el-Kebir"],
    "FTTR": ["Zouar"],
    "FTTZ": ["Bardai"],
    "HSGN": ["El Geneina", "Geneina"],
    "FTTC": ["Abeche", "Abéché"],
    "HSFS": ["El Fasher", "Al-Fashir"],
    "HSNN": ["Nyala"],
    "HSZA": ["Zalingei"],
}


def inside(lon, lat, ring):
    """Even-odd rule point-in-polygon test."""
    hit = False
    for (x1, y1), (x2, y2) in zip(ring, ring[1:]):
        if (y1 > lat) != (y2 > lat):
            x = x1 + (lat - y1) * (x2 - x1) / (y2 - y1)
            if x > lon:
                hit = not hit
    return hit


def airports_csv(argv):
    if len(argv) > 1:
        return argv[1], "given"
    tmp = tempfile.mkdtemp()
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "-q",
         f"airportsdata=={AIRPORTSDATA_VERSION}", "-d", tmp],
        check=True,
    )
    whl = glob.glob(os.path.join(tmp, "airportsdata-*.whl"))[0]
    with zipfile.ZipFile(whl) as z:
        z.extract("airportsdata/airports.csv", tmp)
    return os.path.join(tmp, "airportsdata", "airports.csv"), AIRPORTSDATA_VERSION


def main(argv):
    path, version = airports_csv(argv)
    source = f"airportsdata {version} (PyPI), airports.csv"
    features = [{
        "type": "Feature",
        "properties": {
            "kind": "region",
            "name": "southern-libya",
            "title": "Southern Libya and the Chad/Sudan border areas",
            "source": "outline drawn for dunewatch (scripts/make_places.py)",
            "licence": "CC0-1.0",
        },
        "geometry": {"type": "Polygon", "coordinates": [REGION]},
    }]
    places = []
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            lat, lon = float(row["lat"]), float(row["lon"])
            if not inside(lon, lat, REGION):
                continue
            places.append((row["icao"], row["name"], row["country"], lat, lon))
    places.sort()
    for icao, name, country, lat, lon in places:
        features.append({
            "type": "Feature",
            "properties": {
                "kind": "airfield",
                "name": name,
                "icao": icao,
                "country": country,
                "aliases": ALIASES.get(icao, []),
                "source": source,
                "licence": "MIT",
            },
            "geometry": {"type": "Point", "coordinates": [lon, lat]},
        })
    missing = set(ALIASES) - {p[0] for p in places}
    if missing:
        sys.exit(f"aliases for airfields outside the region: {sorted(missing)}")
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "presets",
                       "southern-libya.geojson")
    with open(out, "w", encoding="utf-8") as f:
        json.dump({"type": "FeatureCollection", "features": features}, f,
                  ensure_ascii=False, indent=1)
        f.write("\n")
    print(f"{out}: 1 region, {len(places)} airfields")


if __name__ == "__main__":
    main(sys.argv)
