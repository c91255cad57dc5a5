-- depends_on: {{ ref('archive_log') }}
-- DISPATCH UNIT_SCADA v1: c4 SETTLEMENTDATE, c5 DUID, c6 SCADAVALUE (8 fields).
select
    try_cast(c4 as timestamp) as settlementdate,
    c5 as duid,
    try_cast(c6 as double) as mw,
    {{ zip_name('filename') }} as source_file
from {{ read_mms('scada', 8) }}
where c0 = 'D' and c1 = 'DISPATCH' and c2 = 'UNIT_SCADA'
