-- Regional reference price at 5-minute grain: daily-report prices and, for the
-- hours no daily report covers yet, intraday dispatch prices. Same file-by-file
-- loading and superseding as fct_scada.
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='source_file',
    post_hook="{{ drop_superseded_intraday(this, 'PUBLIC_DISPATCHIS_') }}"
) }}

with prices as (
    select settlementdate, region_id, rrp, source_file from {{ ref('stg_daily_region') }}
    union all
    select settlementdate, region_id, rrp, source_file from {{ ref('stg_intraday_price') }}
)

select
    settlementdate,
    {{ market_date('settlementdate') }} as date,
    region_id,
    rrp,
    source_file
from prices
