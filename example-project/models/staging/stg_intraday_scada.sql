-- Unit output from the 5-minute SCADA files (DISPATCH UNIT_SCADA). This table has
-- no intervention rows: it is metering, not a dispatch run.
select
    SETTLEMENTDATE as settlementdate,
    DUID as duid,
    SCADAVALUE as mw,
    source_file
from {{ read_source('scada', 'DISPATCH_UNIT_SCADA', columns={
    'SETTLEMENTDATE': 'TIMESTAMP',
    'DUID': 'VARCHAR',
    'SCADAVALUE': 'DOUBLE'
}) }}
