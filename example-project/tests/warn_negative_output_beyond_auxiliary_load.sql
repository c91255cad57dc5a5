-- Units drawing more than auxiliary load: batteries charge (negative output is
-- their job), but real non-battery units do report clearly negative SCADA
-- values too (a bagasse unit at -12.46 MW, solar farms at -0.10 MW at night).
-- Worth a look, never a reason to stop publishing: a warning.
-- Returns readings below minus var('aux_load_tolerance_mw') of units that are
-- not batteries (fuel category from seeds/fuel_categories.csv), among the
-- readings this run wrote (new_rows: see assert_fct_scada_one_row_per_unit_interval.sql).
{{ config(severity='warn') }}
select
    f.duid,
    f.settlementdate,
    f.mw,
    d.fuel
from {{ new_rows('fct_scada') }} as f
left join {{ ref('dim_duid') }} as d on d.duid = f.duid
where f.mw < -{{ var('aux_load_tolerance_mw') }}
  and coalesce(d.fuel, 'Unknown') <> 'Battery'
