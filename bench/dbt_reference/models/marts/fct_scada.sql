-- Unit generation at 5-minute grain: settled readings from the daily reports and,
-- for the hours no daily report covers yet, the intraday SCADA readings.
--
-- The table grows file by file: each run reads only the files it took.
-- delete+insert on (settlementdate, duid) keeps one reading per unit and
-- interval: re-taking a file replaces its rows instead of doubling them, and a
-- daily report replaces the intraday readings of the intervals it settles. When
-- one run takes both feeds for an interval, the daily reading wins here.
-- On an Iceberg target only the data files whose settlementdate/duid bounds can
-- hold the new keys are read and rewritten, so a 5-minute file costs the same
-- whatever the table's size.
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key=['settlementdate', 'duid']
) }}

with readings as (
    select settlementdate, duid, mw, source_file, 0 as feed from {{ ref('stg_daily_unit') }}
    union all
    select settlementdate, duid, mw, source_file, 1 as feed from {{ ref('stg_intraday_scada') }}
)

select
    settlementdate,
    {{ market_date('settlementdate') }} as date,
    duid,
    mw,
    source_file
from readings
qualify row_number() over (
    partition by settlementdate, duid order by feed, source_file desc
) = 1
