-- depends_on: {{ ref('archive_log') }}
-- DREGION v3 from the daily reports: c4 SETTLEMENTDATE, c6 REGIONID,
-- c7 INTERVENTION, c8 RRP (144 fields). Physical run only.
select
    try_cast(c4 as timestamp) as settlementdate,
    c6 as region_id,
    try_cast(c8 as double) as rrp,
    {{ zip_name('filename') }} as source_file
from {{ read_mms('daily', 144) }}
where c0 = 'D' and c1 = 'DREGION' and c3 = '3'
  and try_cast(c7 as integer) = 0
