"""A second implementation of Stride's track definitions (README "Track metrics"), written
from their text with GeographicLib and the standard library's XML parser (FIT through
fitdecode), to check the Rust crate against. Prints one JSON object per file given.

    python metrics.py FILE...
"""
import datetime as dt
import gzip
import json
import math
import sys
import xml.etree.ElementTree as ET

from geographiclib.geodesic import Geodesic

WGS84 = Geodesic.WGS84
R = 6371008.8


def local(tag):
    return tag.rsplit("}", 1)[-1]


def parse_time(text):
    if text is None:
        return None
    text = text.strip()
    try:
        if text.endswith("Z"):
            text = text[:-1] + "+00:00"
        t = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.timezone.utc)
    # Integer nanoseconds, as the definitions sum them.
    delta = t - dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
    return (delta.days * 86400 + delta.seconds) * 10**9 + delta.microseconds * 1000


def num(text):
    try:
        v = float(text)
        return v if math.isfinite(v) else None
    except (TypeError, ValueError):
        return None


def hr(v):
    return None if v is None or v <= 0 or v >= 255 else round(v)


def point(time=None, pos=None, ele=None, dist=None, heart=None, seg=0):
    return {"t": time, "pos": pos, "ele": ele, "dist": dist, "hr": heart, "seg": seg}


def read_gpx(root):
    points, seg = [], -1
    for trk in [e for e in root if local(e.tag) == "trk"]:
        for trkseg in [e for e in trk if local(e.tag) == "trkseg"]:
            seg += 1
            for p in [e for e in trkseg if local(e.tag) == "trkpt"]:
                kids = {local(c.tag): c for c in p}
                heart = None
                for e in p.iter():
                    if local(e.tag) == "hr":
                        heart = hr(num(e.text))
                points.append(point(parse_time(kids["time"].text) if "time" in kids else None,
                                    (float(p.get("lat")), float(p.get("lon"))),
                                    num(kids["ele"].text) if "ele" in kids else None, None, heart, max(seg, 0)))
    return points


def read_tcx(root):
    points, seg = [], 0
    for lap in root.iter():
        if local(lap.tag) != "Lap":
            continue
        for i, track in enumerate([e for e in lap if local(e.tag) == "Track"]):
            if i > 0:
                seg += 1
            for tp in [e for e in track if local(e.tag) == "Trackpoint"]:
                kids = {local(c.tag): c for c in tp}
                pos = None
                if "Position" in kids:
                    pk = {local(c.tag): c.text for c in kids["Position"]}
                    pos = (float(pk["LatitudeDegrees"]), float(pk["LongitudeDegrees"]))
                heart = None
                if "HeartRateBpm" in kids:
                    heart = hr(num([c for c in kids["HeartRateBpm"]][0].text))
                points.append(point(parse_time(kids["Time"].text) if "Time" in kids else None, pos,
                                    num(kids["AltitudeMeters"].text) if "AltitudeMeters" in kids else None,
                                    num(kids["DistanceMeters"].text) if "DistanceMeters" in kids else None,
                                    heart, seg))
    return points


def read_fit(data):
    import io
    import fitdecode
    points, seg, stopped = [], 0, False
    with fitdecode.FitReader(io.BytesIO(data)) as fit:
        for frame in fit:
            if not isinstance(frame, fitdecode.FitDataMessage):
                continue
            def get(name):
                return frame.get_value(name, fallback=None)
            if frame.name == "event" and get("event") == "timer":
                kind = get("event_type")
                if kind in ("stop", "stop_all", "stop_disable", "stop_disable_all"):
                    stopped = True
                elif kind == "start" and stopped:
                    stopped, seg = False, seg + 1
            if frame.name != "record":
                continue
            t = get("timestamp")
            lat, lon = get("position_lat"), get("position_long")
            pos = None
            if lat is not None and lon is not None:
                pos = (lat * 180 / 2**31, lon * 180 / 2**31)
            ele = get("enhanced_altitude")
            if ele is None:
                ele = get("altitude")
            points.append(point(None if t is None else int(t.timestamp()) * 10**9, pos, ele,
                                get("distance"), hr(get("heart_rate")), seg))
    return points


def read(path):
    data = open(path, "rb").read()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    if len(data) >= 12 and data[8:12] == b".FIT":
        return read_fit(data)
    root = ET.fromstring(data)
    return read_gpx(root) if local(root.tag) == "gpx" else read_tcx(root)


def half_away(x):
    return math.floor(x + 0.5) if x >= 0 else -math.floor(-x + 0.5)


def metrics(points):
    cum, total = [], 0.0
    for i, p in enumerate(points):
        if i > 0:
            a = points[i - 1]
            if a["seg"] == p["seg"]:
                if a["pos"] and p["pos"]:
                    total += WGS84.Inverse(a["pos"][0], a["pos"][1], p["pos"][0], p["pos"][1])["s12"]
                elif a["dist"] is not None and p["dist"] is not None:
                    total += p["dist"] - a["dist"]
        cum.append(total)
    timed, last = [], None
    for i, p in enumerate(points):
        if p["t"] is not None and (last is None or p["t"] > last):
            timed.append(i)
            last = p["t"]
    if len(timed) < 2:
        return {"error": "no_track"}
    moving = 0
    for a, b in zip(timed, timed[1:]):
        if points[a]["seg"] != points[b]["seg"]:
            continue
        d_t = points[b]["t"] - points[a]["t"]
        if cum[b] - cum[a] >= 0.5 * d_t / 1e9:
            moving += d_t
    elev = [p["ele"] for p in points if p["ele"] is not None]
    gain = loss = None
    if len(elev) >= 2:
        gain = loss = 0.0
        anchor = elev[0]
        for e in elev[1:]:
            if e - anchor >= 3:
                gain, anchor = gain + e - anchor, e
            elif anchor - e >= 3:
                loss, anchor = loss + anchor - e, e
    hrs = [p["hr"] for p in points if p["hr"] is not None]
    t0 = points[timed[0]]["t"]
    marks, k = [0.0], 1
    series = [((points[i]["t"] - t0) / 1e9, cum[i]) for i in timed]
    for (ta, ca), (tb, cb) in zip(series, series[1:]):
        while cb >= k * 1000:
            marks.append(ta if ca >= k * 1000 else ta + (k * 1000 - ca) / (cb - ca) * (tb - ta))
            k += 1
    splits = [{"km": i + 1, "distance_m": 1000.0, "elapsed_s": round((marks[i + 1] - marks[i]) * 10) / 10}
              for i in range(len(marks) - 1)]
    rest = total - 1000 * len(splits)
    if rest > 0:
        splits.append({"km": len(splits) + 1, "distance_m": rest,
                       "elapsed_s": round((series[-1][0] - marks[-1]) * 10) / 10})
    result = {
        "points": len(points),
        "elapsed_s": half_away((points[timed[-1]]["t"] - t0) / 1e9),
        "moving_s": half_away(moving / 1e9),
        "distance_m": total,
        "elevation_gain_m": gain,
        "elevation_loss_m": loss,
        "avg_hr": half_away(sum(hrs) / len(hrs)) if hrs else None,
        "max_hr": max(hrs) if hrs else None,
        "splits": splits,
    }
    if result["moving_s"] == 0:
        return {"error": "no_track"}
    result.update(route([p["pos"] for p in points if p["pos"]]))
    return result


def rdp(xy, tol):
    keep = [False] * len(xy)
    keep[0] = keep[-1] = True
    stack = [(0, len(xy) - 1)]
    while stack:
        s, e = stack.pop()
        (ax, ay), (bx, by) = xy[s], xy[e]
        best, at = 0.0, None
        for i in range(s + 1, e):
            px, py = xy[i]
            dx, dy = bx - ax, by - ay
            l2 = dx * dx + dy * dy
            t = 0.0 if l2 == 0 else max(0.0, min(1.0, ((px - ax) * dx + (py - ay) * dy) / l2))
            d = math.hypot(px - (ax + t * dx), py - (ay + t * dy))
            if d > best:
                best, at = d, i
        if at is not None and best > tol:
            keep[at] = True
            stack += [(s, at), (at, e)]
    return keep


def encode(coords):
    out, last = [], (0, 0)
    for lat, lon in coords:
        cur = (half_away(lat * 1e5), half_away(lon * 1e5))
        for v in (cur[0] - last[0], cur[1] - last[1]):
            v = ~(v << 1) if v < 0 else v << 1
            while v >= 0x20:
                out.append(chr((0x20 | (v & 0x1F)) + 63))
                v >>= 5
            out.append(chr(v + 63))
        last = cur
    return "".join(out)


def route(pos):
    if not pos:
        return {"polyline": None, "polyline_tolerance_m": None, "bbox": None}
    lats, lons = [p[0] for p in pos], [p[1] for p in pos]
    bbox = [min(lats), min(lons), max(lats), max(lons)]
    lat0, lon0 = (bbox[0] + bbox[2]) / 2, (bbox[1] + bbox[3]) / 2
    c = math.cos(math.radians(lat0))
    xy = [(R * math.radians(lon - lon0) * c, R * math.radians(lat - lat0)) for lat, lon in pos]
    tol = 5.0
    while True:
        keep = rdp(xy, tol)
        if sum(keep) <= 1000:
            return {"polyline": encode([p for p, k in zip(pos, keep) if k]), "polyline_tolerance_m": tol, "bbox": bbox}
        tol *= 2


if __name__ == "__main__":
    for path in sys.argv[1:]:
        try:
            out = metrics(read(path))
        except Exception as e:  # a file the reference cannot read is reported, not hidden
            out = {"error": "unreadable: %s" % e}
        print(json.dumps({"file": path, **out}))
