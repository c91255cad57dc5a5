-- The grain of fct_scada: at most one reading per unit and interval, whichever
-- feed it came from. Returns the duplicated keys.
select
    duid,
    settlementdate,
    count(*) as readings
from {{ ref('fct_scada') }}
group by duid, settlementdate
having count(*) > 1
