-- The grain of fct_price: at most one price per region and interval. Returns the
-- duplicated keys. Grouped over the stored rows of the market dates this run
-- wrote (see assert_fct_scada_one_row_per_unit_interval.sql).
select
    f.region_id,
    f.settlementdate,
    count(*) as prices
from {{ stored_on_new_dates('fct_price', 'date') }} as f
group by f.region_id, f.settlementdate
having count(*) > 1
