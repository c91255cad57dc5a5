-- A physical limit: no unit produces more than 1.5 times the larger of its
-- registered and maximum capacity (plus 1 MW, for the smallest units). A
-- reading above that is a unit mix-up or a data error. Units without a
-- registered capacity (`-` in the list) or unknown to the list are not judged.
-- Judges the readings this run wrote (new_rows: see
-- assert_fct_scada_one_row_per_unit_interval.sql); earlier ones were judged
-- when they were written.
select
    f.duid,
    f.settlementdate,
    f.mw,
    greatest(d.capacity_mw, d.max_capacity_mw) as capacity_mw
from {{ new_rows('fct_scada') }} as f
join {{ ref('dim_duid') }} as d on d.duid = f.duid
where greatest(d.capacity_mw, d.max_capacity_mw) > 0
  and f.mw > 1.5 * greatest(d.capacity_mw, d.max_capacity_mw) + 1
