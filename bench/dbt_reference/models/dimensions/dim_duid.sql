-- depends_on: {{ ref('archive_log') }}
-- Generating units: the registration list joined with unit coordinates.
--
-- Reference files are fetched only by the daily backfill, so a run that took none
-- (intraday) must keep the units already known instead of rebuilding an empty
-- table: hence an incremental merge on duid rather than the folder's `table`.
-- Units seen before keep their row and get the newest attributes.
{{ config(materialized='incremental', incremental_strategy='merge', unique_key='duid') }}

with registration as (
    select
        trim(DUID) as duid,
        trim("Station Name") as station_name,
        trim(Participant) as participant,
        trim(Region) as region_id,
        trim("Fuel Source - Primary") as fuel,
        trim("Technology Type") as technology,
        "Reg Cap (MW)" as capacity_mw
    from read_csv('{{ env_var("BENCH_ARCHIVE") }}/duid_registration/*.gz', header = true, types = {
        'DUID': 'VARCHAR',
        'Participant': 'VARCHAR',
        'Station Name': 'VARCHAR',
        'Region': 'VARCHAR',
        'Fuel Source - Primary': 'VARCHAR',
        'Technology Type': 'VARCHAR',
        'Reg Cap (MW)': 'DOUBLE'
    })
    -- The published list has placeholder rows ('-') and can name a unit twice
    -- (e.g. under two participants): keep one row per unit, the largest.
    where length(trim(DUID)) > 1
    qualify row_number() over (
        partition by trim(DUID) order by "Reg Cap (MW)" desc nulls last, Participant
    ) = 1
),

geo as (
    select
        trim(DUID) as duid,
        trim(State) as state,
        Latitude as latitude,
        Longitude as longitude
    from read_csv('{{ env_var("BENCH_ARCHIVE") }}/duid_geo/*.gz', header = true, types = {
        'DUID': 'VARCHAR',
        'State': 'VARCHAR',
        'Latitude': 'DOUBLE',
        'Longitude': 'DOUBLE'
    })
    where Latitude is not null
    qualify row_number() over (partition by trim(DUID) order by Latitude, Longitude) = 1
)

select
    r.duid,
    r.station_name,
    r.participant,
    r.region_id,
    r.fuel,
    r.technology,
    -- Units without coordinates still get their state, from the region code.
    coalesce(g.state, regexp_replace(r.region_id, '\d+$', '')) as state,
    g.latitude,
    g.longitude,
    r.capacity_mw
from registration as r
left join geo as g on g.duid = r.duid
