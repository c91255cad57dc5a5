-- One row per day from var('calendar_start') to var('calendar_end'), with the
-- attributes the dashboard filters and groups by.
--
-- Incremental: a run adds only the days past the stored ones (none once the
-- calendar is built), so it is not rebuilt every run and the relationships
-- tests of the facts against it check the rows each run wrote, not every
-- stored date (a calendar only gains days; after changing calendar_start,
-- run once with --full-refresh).
{{ config(materialized='incremental') }}

with days as (
    select cast(day as date) as date
    from generate_series(
        date '{{ var("calendar_start") }}',
        date '{{ var("calendar_end") }}',
        interval 1 day
    ) as t(day)
)

select
    date,
    year(date) as year,
    month(date) as month,
    monthname(date) as month_name,
    isodow(date) as day_of_week,  -- 1 = Monday … 7 = Sunday
    dayname(date) as day_name,
    isodow(date) >= 6 as is_weekend,
    {{ half_year('date') }} as half_year
from days
{% if is_incremental() %}
where date > (select max(date) from {{ this }})
{% endif %}
order by date
