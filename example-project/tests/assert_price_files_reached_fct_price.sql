-- Every daily or DispatchIS file this run took reached fct_price (or, for an
-- intraday file, was superseded by a daily report). Returns the missing files.
-- A file this run took reaches the rows this run wrote (new_rows: see
-- assert_fct_scada_one_row_per_unit_interval.sql), so those are searched.
with taken as (
    select distinct file_name
    from {{ file_log() }}
    where source in ('daily', 'price', 'history')
      -- The log holds every run's files: this run's were taken after it started.
      and taken_at >= timestamp '{{ run_started_at.strftime("%Y-%m-%d %H:%M:%S") }}'
),

newest_daily as (
    select max(settlementdate) as settlementdate
    from {{ new_rows('fct_price') }}
    where source_file like 'PUBLIC_DAILY_%'
)

select taken.file_name
from taken
cross join newest_daily
where not exists (
        select 1 from {{ new_rows('fct_price') }} as f where f.source_file = taken.file_name
    )
    -- The same market day from NEMWEB and from the GitHub archive: one copy
    -- of its rows is kept.
    and not exists (
        select 1 from {{ new_rows('fct_price') }} as f
        where taken.file_name like 'PUBLIC_DAILY_%'
          and f.source_file like 'PUBLIC_DAILY_' || regexp_extract(taken.file_name, 'PUBLIC_DAILY_(\d{8})', 1) || '%'
    )
    and not (
        taken.file_name like 'PUBLIC_DISPATCHIS_%'
        and {{ file_interval('taken.file_name') }} <= coalesce(newest_daily.settlementdate, TIMESTAMP '1900-01-01')
    )
