"""Writers of small files in every real MovieLens / Netflix layout (imported by the tests)."""

from __future__ import annotations

import zipfile
from pathlib import Path

# user, item, rating, timestamp: 4 users, 5 items, 10 ratings; user 3 rated nothing below 4.
ROWS = [
    (1, 10, 5, 881250949),
    (1, 20, 3, 881250950),
    (1, 30, 4, 881250951),
    (2, 10, 1, 891717742),
    (2, 40, 2, 891717743),
    (3, 20, 4, 878887116),
    (3, 50, 5, 878887117),
    (7, 10, 3, 879000000),
    (7, 30, 2, 879000001),
    (7, 50, 1, 879000002),
]
N_USERS, N_ITEMS, N_RATINGS = 4, 5, 10

# Latin-1 titles with colons (as in ML-1M's movies.dat).
TITLES = {
    10: "Toy Story (1995)",
    20: "Misérables, Les (1995)",
    30: "Star Wars: Episode IV - A New Hope (1977)",
    40: "Wallace & Gromit: The Best of Aardman Animation (1996)",
    50: "Dr. Strangelove or: How I Learned to Stop Worrying and Love the Bomb (1963)",
    60: "Never Rated: The Movie (2000)",
}


def write_100k(folder: Path, rows=ROWS) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "u.data").write_text("".join(f"{u}\t{i}\t{r}\t{t}\n" for u, i, r, t in rows))
    genres = "unknown|0\nAction|1\nAdventure|2\nAnimation|3\nChildren's|4\nComedy|5\n"
    (folder / "u.genre").write_text(genres + "\n")
    lines = []
    for i, title in TITLES.items():
        flags = ["0"] * 19
        flags[3 if i == 10 else 1] = "1"
        lines.append(f"{i}|{title}|01-Jan-1995||http://us.imdb.com/x|" + "|".join(flags))
    (folder / "u.item").write_bytes(("\n".join(lines) + "\n").encode("latin-1"))
    users = "".join(f"{u}|{20 + u}|M|writer|0000{u}\n" for u in (1, 2, 3, 7))
    (folder / "u.user").write_text(users)
    return folder


def write_dat(folder: Path, rows=ROWS, timestamps: bool = True, name="ratings.dat") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    if timestamps:
        text = "".join(f"{u}::{i}::{r}::{t}\n" for u, i, r, t in rows)
    else:
        text = "".join(f"{u}::{i}::{r}\n" for u, i, r, _ in rows)
    (folder / name).write_text(text)
    movies = "".join(f"{i}::{t}::Comedy|Drama\n" for i, t in TITLES.items())
    (folder / "movies.dat").write_bytes(movies.encode("latin-1"))
    (folder / "users.dat").write_text("".join(f"{u}::F::25::{u}::1000{u}\n" for u in (1, 2, 3, 7)))
    return folder


def write_csv(folder: Path, rows=ROWS, half: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    out = ["userId,movieId,rating,timestamp"]
    for u, i, r, t in rows:
        out.append(f"{u},{i},{r - 0.5 if half and r > 1 else r},{t}")
    (folder / "ratings.csv").write_text("\n".join(out) + "\n")
    movies = ["movieId,title,genres"]
    for i, t in TITLES.items():
        movies.append(f'{i},"{t.replace(":", ",")}",Comedy')
    (folder / "movies.csv").write_text("\n".join(movies) + "\n", encoding="utf-8")
    return folder


def zip_folder(folder: Path, target: Path) -> Path:
    """Zip ``folder`` under its own name, as GroupLens releases are laid out."""
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for f in sorted(folder.iterdir()):
            zf.write(f, f"{folder.name}/{f.name}")
    return target
