-- Unit output from the daily reports (DUNIT): the current ones (`daily`, the
-- last ~2 months on NEMWEB) and the history archive (`history`, every day
-- since 2015 from GitHub). INITIALMW is the unit's metered output at the
-- interval, the same reading the intraday SCADA feed carries. Intervals
-- re-run under an AEMO intervention appear twice; INTERVENTION = 0 is the
-- physical dispatch we keep. Columns are read by name from each file's own
-- `I` header, so the DUNIT versions of ten years (2 and 3) read alike.
{% for source in ['daily', 'history'] %}
{% if not loop.first %}union all{% endif %}
select
    SETTLEMENTDATE as settlementdate,
    DUID as duid,
    INITIALMW as mw,
    source_file
from {{ read_source(source, 'DUNIT', columns={
    'SETTLEMENTDATE': 'TIMESTAMP',
    'DUID': 'VARCHAR',
    'INTERVENTION': 'INTEGER',
    'INITIALMW': 'DOUBLE'
}) }}
where INTERVENTION = 0
{% endfor %}
