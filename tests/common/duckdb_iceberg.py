"""Reads Iceberg tables with DuckDB's own iceberg extension (an independent
reader of what analytics-action writes). Installed by scripts/setup-seaweedfs
from PyPI wheels (duckdb + duckdb-extension-{httpfs,avro,iceberg}).

usage: duckdb_iceberg.py CATALOG_URL S3_URL SQL  (tables as lake.<ns>.<table>;
the catalog is attached read-write, so SQL may also change tables)
prints each result row as space-separated values.
"""
import glob
import os
import sys

import duckdb

site = os.path.dirname(os.path.dirname(duckdb.__file__))
con = duckdb.connect()
for ext in ["httpfs", "avro", "iceberg"]:
    (path,) = glob.glob(f"{site}/duckdb_extension_{ext}/extensions/*/{ext}.duckdb_extension")
    con.execute(f"LOAD '{path}'")
catalog, s3, sql = sys.argv[1:4]
con.execute(
    f"CREATE SECRET (TYPE s3, KEY_ID 'admin', SECRET 'secretkey', ENDPOINT '{s3.split('//')[1]}', "
    "URL_STYLE 'path', USE_SSL false, REGION 'us-east-1')"
)
con.execute(
    f"CREATE SECRET ice (TYPE iceberg, CLIENT_ID 'admin', CLIENT_SECRET 'secretkey', "
    f"OAUTH2_SERVER_URI '{catalog}/v1/oauth/tokens')"
)
con.execute(f"ATTACH 's3://warehouse' AS lake (TYPE iceberg, ENDPOINT '{catalog}', SECRET ice, READ_ONLY false)")
for row in con.execute(sql).fetchall():
    print(" ".join(str(v) for v in row))
