-- The grain of fct_price: at most one price per region and interval. Returns the
-- duplicated keys.
select
    region_id,
    settlementdate,
    count(*) as prices
from {{ ref('fct_price') }}
group by region_id, settlementdate
having count(*) > 1
