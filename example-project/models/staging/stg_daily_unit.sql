-- Unit output from the daily reports (DUNIT). INITIALMW is the unit's metered
-- output at the interval, the same reading the intraday SCADA feed carries.
-- Intervals re-run under an AEMO intervention appear twice; INTERVENTION = 0 is
-- the physical dispatch we keep.
select
    SETTLEMENTDATE as settlementdate,
    DUID as duid,
    INITIALMW as mw,
    source_file
from {{ read_source('daily', 'DUNIT', columns={
    'SETTLEMENTDATE': 'TIMESTAMP',
    'DUID': 'VARCHAR',
    'INTERVENTION': 'INTEGER',
    'INITIALMW': 'DOUBLE'
}) }}
where INTERVENTION = 0
