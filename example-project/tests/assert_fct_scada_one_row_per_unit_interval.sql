-- The grain of fct_scada: at most one reading per unit and interval, whichever
-- feed it came from. Returns the duplicated keys.
--
-- stored_on_new_dates('fct_scada', 'date') is the stored rows of the market
-- dates this run wrote when analytics.yml says `tests: {incremental_scope:
-- new_rows}` (the whole table otherwise, as ref): a key's readings share its
-- market date, so a new reading that duplicates one stored earlier is among
-- them and still fails, without grouping the whole history every day. On the
-- Iceberg warehouse the test reads only the data files whose `date` bounds
-- hold those dates.
select
    f.duid,
    f.settlementdate,
    count(*) as readings
from {{ stored_on_new_dates('fct_scada', 'date') }} as f
group by f.duid, f.settlementdate
having count(*) > 1
