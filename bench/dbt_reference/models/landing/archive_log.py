"""Ingest, as the seed design does it: a dbt Python model that takes every source
file, extracts each zip's CSV member into a gzip CSV archive, and returns the log
of what it took (the table the file-completeness tests read).

Where files come from and where the archive goes is set by environment variables
(the seed used FILES_PATH the same way); bench/ci_vs_dbt sets them:

    BENCH_ARCHIVE      archive root (cleared and refilled on each run)
    BENCH_DAILY        folder of PUBLIC_DAILY_*.zip
    BENCH_SCADA        folder of PUBLIC_DISPATCHSCADA_*.zip
    BENCH_PRICE        folder of PUBLIC_DISPATCHIS_*.zip
    BENCH_DUID_REGISTRATION  folder of NEM-Registration-and-Exemption-List_*.xls
                       (xlsx workbooks): the newest one's sheet `PU and
                       Scheduled Loads` is written as CSV, every cell as text
    BENCH_DUID_GEO     unit coordinates (aemo_fabric's geo_data.csv)
    BENCH_REF_GZIP_LEVEL   gzip level of the archive (default 9, Python's default)
    BENCH_REF_WORKERS      extraction threads (default 8)
"""


def model(dbt, session):
    import gzip
    import os
    import re
    import shutil
    import zipfile
    from concurrent.futures import ThreadPoolExecutor
    from datetime import datetime, timezone

    archive = os.environ["BENCH_ARCHIVE"]
    level = int(os.environ.get("BENCH_REF_GZIP_LEVEL", "9"))
    workers = int(os.environ.get("BENCH_REF_WORKERS", "8"))

    zipped = [
        ("daily", os.environ["BENCH_DAILY"], r"PUBLIC_DAILY_\d{12}_\d{14}\.zip"),
        ("scada", os.environ["BENCH_SCADA"], r"PUBLIC_DISPATCHSCADA_\d{12}_\d{16}\.zip"),
        ("price", os.environ["BENCH_PRICE"], r"PUBLIC_DISPATCHIS_\d{12}_\d{16}\.zip"),
    ]
    plain = [("duid_geo", os.environ["BENCH_DUID_GEO"])]
    registration = os.environ["BENCH_DUID_REGISTRATION"]
    workbooks = sorted(
        n for n in os.listdir(registration)
        if re.fullmatch(r"NEM-Registration-and-Exemption-List_\d{8}\.xls", n)
    )

    def extract(source, path):
        """One zip: every CSV member to <archive>/<source>/<member>.gz."""
        out_dir = os.path.join(archive, source)
        rows = []
        with zipfile.ZipFile(path) as z:
            for name in z.namelist():
                if not name.upper().endswith(".CSV"):
                    continue
                dest = os.path.join(out_dir, os.path.basename(name) + ".gz")
                with gzip.open(dest, "wb", compresslevel=level) as f:
                    f.write(z.read(name))
                rows.append((source, os.path.basename(path), dest, os.path.getsize(path)))
        return rows

    def copy_plain(source, path):
        out_dir = os.path.join(archive, source)
        dest = os.path.join(out_dir, os.path.basename(path) + ".gz")
        with open(path, "rb") as src, gzip.open(dest, "wb", compresslevel=level) as f:
            shutil.copyfileobj(src, f)
        return [(source, os.path.basename(path), dest, os.path.getsize(path))]

    def sheet_to_csv(source, path):
        """The registration workbook's unit sheet as a gzip CSV of text cells."""
        import csv
        import io

        import openpyxl

        out_dir = os.path.join(archive, source)
        dest = os.path.join(out_dir, os.path.basename(path) + ".csv.gz")
        # Named .xls but really xlsx (as AEMO publishes it): opened as a file
        # object, since openpyxl refuses the name's extension.
        with open(path, "rb") as f:
            book = openpyxl.load_workbook(io.BytesIO(f.read()), read_only=True, data_only=True)
        text = io.StringIO()
        writer = csv.writer(text)
        for row in book["PU and Scheduled Loads"].iter_rows(values_only=True):
            writer.writerow(["" if v is None else str(v) for v in row])
        with gzip.open(dest, "wt", compresslevel=level, newline="") as f:
            f.write(text.getvalue())
        return [(source, os.path.basename(path), dest, os.path.getsize(path))]

    jobs = []
    for source, folder, pattern in zipped:
        shutil.rmtree(os.path.join(archive, source), ignore_errors=True)
        os.makedirs(os.path.join(archive, source))
        names = sorted(n for n in os.listdir(folder) if re.fullmatch(pattern, n))
        jobs += [(extract, source, os.path.join(folder, n)) for n in names]
    for source, path in plain:
        shutil.rmtree(os.path.join(archive, source), ignore_errors=True)
        os.makedirs(os.path.join(archive, source))
        jobs.append((copy_plain, source, path))

    shutil.rmtree(os.path.join(archive, "duid_registration"), ignore_errors=True)
    os.makedirs(os.path.join(archive, "duid_registration"))
    if workbooks:
        jobs.append((sheet_to_csv, "duid_registration", os.path.join(registration, workbooks[-1])))

    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(lambda j: j[0](j[1], j[2]), jobs))

    taken_at = datetime.now(timezone.utc).replace(tzinfo=None)
    session.execute(
        "create or replace temp table _archive_log_rows "
        "(source varchar, file_name varchar, archive_path varchar, bytes bigint, taken_at timestamp)"
    )
    session.executemany(
        "insert into _archive_log_rows values (?, ?, ?, ?, ?)",
        [list(r) + [taken_at] for rows in results for r in rows],
    )
    return session.sql("select * from _archive_log_rows")
