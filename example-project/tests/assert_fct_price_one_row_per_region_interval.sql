-- The grain of fct_price: at most one price per region and interval. Returns the
-- duplicated keys. Grouped over the intervals this run wrote (see
-- assert_fct_scada_one_row_per_unit_interval.sql).
with written as (
    select min(settlementdate) as first_interval, max(settlementdate) as last_interval
    from {{ new_rows('fct_price') }}
)

select
    f.region_id,
    f.settlementdate,
    count(*) as prices
from {{ ref('fct_price') }} as f
cross join written
where f.settlementdate between written.first_interval and written.last_interval
group by f.region_id, f.settlementdate
having count(*) > 1
