-- One row per report date from either daily publication: the healthdata.gov export (dataset
-- ehpz-xc9n) or the daily report PDF. The export is preferred; the PDF fills the days whose
-- export row lacks the apprehended figure (some exports leave it empty for 2021-early 2023).
-- A row is taken whole from one publication, never mixed.

with export as (

    select
        report_date,
        cbp_apprehended_excl_mexico,
        cbp_transferred_out,
        hhs_discharged,
        'healthdata_export' as daily_source,
        source_file,
        vintage
    from {{ ref('stg_hhs__uc_daily') }}

),

report as (

    select
        report_date,
        cbp_apprehended_excl_mexico,
        cbp_transferred_out,
        hhs_discharged,
        'daily_report_pdf' as daily_source,
        source_file,
        vintage
    from {{ ref('stg_hhs__uc_daily_report') }}

),

candidates as (

    select *, 1 as preference from export
    union all
    select *, 2 as preference from report

),

ranked as (

    select
        *,
        row_number() over (
            partition by report_date
            order by (cbp_apprehended_excl_mexico is null), preference
        ) as choice
    from candidates

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
from ranked
where choice = 1
