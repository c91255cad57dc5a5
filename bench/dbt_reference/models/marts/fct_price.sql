-- Regional reference price at 5-minute grain: daily-report prices and, for the
-- hours no daily report covers yet, intraday dispatch prices. Same file-by-file
-- loading and superseding as fct_scada, on (settlementdate, region_id).
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key=['settlementdate', 'region_id']
) }}

with prices as (
    select settlementdate, region_id, rrp, source_file, 0 as feed from {{ ref('stg_daily_region') }}
    union all
    select settlementdate, region_id, rrp, source_file, 1 as feed from {{ ref('stg_intraday_price') }}
)

select
    settlementdate,
    {{ market_date('settlementdate') }} as date,
    region_id,
    rrp,
    source_file
from prices
qualify row_number() over (
    partition by settlementdate, region_id order by feed, source_file desc
) = 1
