-- One row per day from var('calendar_start') to var('calendar_end'), with the
-- attributes the dashboard filters and groups by.
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
order by date
