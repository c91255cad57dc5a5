-- The grain of fct_scada: at most one reading per unit and interval, whichever
-- feed it came from. Returns the duplicated keys.
--
-- new_rows('fct_scada') is what this run wrote to the table when analytics.yml
-- says `tests: {incremental_scope: new_rows}` (the whole table otherwise, as
-- ref): the stored rows of the intervals it wrote are grouped, so a new
-- reading that duplicates one stored earlier still fails, without grouping
-- the whole history every day.
with written as (
    select min(settlementdate) as first_interval, max(settlementdate) as last_interval
    from {{ new_rows('fct_scada') }}
)

select
    f.duid,
    f.settlementdate,
    count(*) as readings
from {{ ref('fct_scada') }} as f
cross join written
where f.settlementdate between written.first_interval and written.last_interval
group by f.duid, f.settlementdate
having count(*) > 1
