-- HHS/DHS daily unaccompanied-children figures for analysts: one row per report date, from the
-- healthdata.gov export or, for the days it lacks, the daily report PDF (int_hhs__uc_daily), calendar columns, day-over-day changes and the publisher's
-- stock/flow identity residual, with the file, line and vintage behind every row.
--
-- "Previous" means the previous *published* report date, which is often 3 days earlier
-- (no Friday/Saturday reports since March 2021): days_since_previous_report says how far back.

with daily as (

    select * from {{ ref('int_hhs__uc_daily') }}

),

with_previous as (

    select
        *,
        lag(report_date) over by_date as previous_report_date,
        lag(cbp_in_custody) over by_date as previous_cbp_in_custody,
        lag(hhs_in_care) over by_date as previous_hhs_in_care
    from daily
    window by_date as (order by report_date)

)

select
    report_date,
    dayname(report_date) as day_of_week,
    isodow(report_date) as iso_day_of_week,
    cast(date_trunc('month', report_date) as date) as report_month,
    -- US federal fiscal year: FY2026 runs from 2025-10-01 to 2026-09-30.
    year(report_date) + case when month(report_date) >= 10 then 1 else 0 end as fiscal_year,

    cbp_apprehended_excl_mexico,
    cbp_in_custody,
    cbp_transferred_out,
    hhs_in_care,
    hhs_discharged,

    previous_report_date,
    date_diff('day', previous_report_date, report_date) as days_since_previous_report,
    cbp_in_custody - previous_cbp_in_custody as cbp_custody_net_change,
    hhs_in_care - previous_hhs_in_care as hhs_care_net_change,
    -- Recorded, never tested or alerted on: the publisher's stocks and flows do not balance on
    -- most days (docs/sources.md A.1).
    hhs_in_care - (previous_hhs_in_care + cbp_transferred_out - hhs_discharged)
        as hhs_care_flow_residual,

    daily_source,
    source_file,
    source_row,
    vintage,
    first_published_vintage,
    vintages_with_date,
    conflicting_copies_in_file,
    figures_in_conflict,
    other_source_file
from with_previous
