-- The three daily flows, one row per report date, from the export or the daily report PDF as
-- int_hhs__uc_daily chose (a row is taken whole from one publication, never mixed).

with daily as (

    select * from {{ ref('int_hhs__uc_daily') }}

)

select
    report_date,
    cast(date_trunc('month', report_date) as date) as month,
    cbp_apprehended_excl_mexico,
    cbp_transferred_out,
    hhs_discharged,
    daily_source,
    source_file,
    vintage
from daily
