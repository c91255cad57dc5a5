-- Unit generation at 5-minute grain: settled readings from the daily reports and,
-- for the hours no daily report covers yet, the intraday SCADA readings.
--
-- The table grows file by file. Each run reads only the files it took, and
-- delete+insert on source_file makes re-taking a file replace its rows instead of
-- doubling them. After each build the post-hook drops intraday rows that a daily
-- report now covers (see macros/superseded.sql), so an interval is held once.
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='source_file',
    post_hook="{{ drop_superseded_intraday(this, 'PUBLIC_DISPATCHSCADA_') }}"
) }}

with readings as (
    select settlementdate, duid, mw, source_file from {{ ref('stg_daily_unit') }}
    union all
    select settlementdate, duid, mw, source_file from {{ ref('stg_intraday_scada') }}
)

select
    settlementdate,
    {{ market_date('settlementdate') }} as date,
    duid,
    mw,
    source_file
from readings
