-- depends_on: {{ ref('archive_log') }}
-- DISPATCH PRICE v5: c4 SETTLEMENTDATE, c6 REGIONID, c8 INTERVENTION, c9 RRP
-- (44 fields). Physical run only.
select
    try_cast(c4 as timestamp) as settlementdate,
    c6 as region_id,
    try_cast(c9 as double) as rrp,
    {{ zip_name('filename') }} as source_file
from {{ read_mms('price', 44) }}
where c0 = 'D' and c1 = 'DISPATCH' and c2 = 'PRICE'
  and try_cast(c8 as integer) = 0
