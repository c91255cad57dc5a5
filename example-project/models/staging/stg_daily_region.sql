-- Regional reference prices from the daily reports (DREGION), physical run only.
select
    SETTLEMENTDATE as settlementdate,
    REGIONID as region_id,
    RRP as rrp,
    source_file
from {{ read_source('daily', 'DREGION', columns={
    'SETTLEMENTDATE': 'TIMESTAMP',
    'REGIONID': 'VARCHAR',
    'INTERVENTION': 'INTEGER',
    'RRP': 'DOUBLE'
}) }}
where INTERVENTION = 0
