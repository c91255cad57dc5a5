-- depends_on: {{ ref('archive_log') }}
-- DUNIT v3 from the daily reports: c4 SETTLEMENTDATE, c6 DUID, c7 INTERVENTION,
-- c10 INITIALMW (58 fields). Physical run only.
select
    try_cast(c4 as timestamp) as settlementdate,
    c6 as duid,
    try_cast(c10 as double) as mw,
    {{ zip_name('filename') }} as source_file
from {{ read_mms('daily', 58) }}
where c0 = 'D' and c1 = 'DUNIT' and c3 = '3'
  and try_cast(c7 as integer) = 0
