-- Regional prices from the 5-minute dispatch files (DISPATCH PRICE), physical run only.
select
    SETTLEMENTDATE as settlementdate,
    REGIONID as region_id,
    RRP as rrp,
    source_file
from {{ read_source('price', 'DISPATCH_PRICE', columns={
    'SETTLEMENTDATE': 'TIMESTAMP',
    'REGIONID': 'VARCHAR',
    'INTERVENTION': 'INTEGER',
    'RRP': 'DOUBLE'
}) }}
where INTERVENTION = 0
