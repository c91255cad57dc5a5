-- Only batteries (which charge) may report clearly negative output. Other units
-- may dip slightly below zero at night from auxiliary load, up to
-- var('aux_load_tolerance_mw'). Returns the offending readings.
select
    f.duid,
    f.settlementdate,
    f.mw,
    d.fuel
from {{ ref('fct_scada') }} as f
left join {{ ref('dim_duid') }} as d on d.duid = f.duid
where f.mw < -{{ var('aux_load_tolerance_mw') }}
  and coalesce(d.fuel, 'unknown') <> 'Battery'
