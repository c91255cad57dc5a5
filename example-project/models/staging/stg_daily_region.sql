-- Regional reference prices from the daily reports (DREGION), current and
-- history archive alike (see stg_daily_unit), physical run only.
{% for source in ['daily', 'history'] %}
{% if not loop.first %}union all{% endif %}
select
    SETTLEMENTDATE as settlementdate,
    REGIONID as region_id,
    RRP as rrp,
    source_file
from {{ read_source(source, 'DREGION', columns={
    'SETTLEMENTDATE': 'TIMESTAMP',
    'REGIONID': 'VARCHAR',
    'INTERVENTION': 'INTEGER',
    'RRP': 'DOUBLE'
}) }}
where INTERVENTION = 0
{% endfor %}
