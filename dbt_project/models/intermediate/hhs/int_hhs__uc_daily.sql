-- One row per report date from either daily publication of HHS/DHS: the healthdata.gov export
-- (dataset ehpz-xc9n) or the daily report PDF. The precedence, day by day:
--
--   1. the export, when it has the day with its first figure (children apprehended and placed
--      in CBP custody); some exports leave that figure empty for 2021 - early 2023;
--   2. else the daily report PDF of the day;
--   3. else the export's row as it is (with its empty figures).
--
-- A row is taken whole from one file, never mixed. Where both publications have the day, the
-- figures both publish are compared: figures_in_conflict names those that differ (the export
-- still wins; the monitor reports the conflict, docs/runbook.md#daily_sources_disagree).

with export as (

    select
        report_date,
        cbp_apprehended_excl_mexico,
        cbp_in_custody,
        cbp_transferred_out,
        hhs_in_care,
        hhs_discharged,
        'healthdata_export' as daily_source,
        1 as preference,
        source_file,
        source_row,
        vintage,
        first_published_vintage,
        vintages_with_date,
        conflicting_copies_in_file
    from {{ ref('stg_hhs__uc_daily') }}

),

report as (

    select
        report_date,
        cbp_apprehended_excl_mexico,
        cbp_in_custody,
        cbp_transferred_out,
        hhs_in_care,
        hhs_discharged,
        'daily_report_pdf' as daily_source,
        2 as preference,
        source_file,
        source_row,
        vintage,
        first_published_vintage,
        vintages_with_date,
        cast(0 as bigint) as conflicting_copies_in_file
    from {{ ref('stg_hhs__uc_daily_report') }}

),

candidates as (

    select * from export
    union all
    select * from report

),

ranked as (

    select
        *,
        row_number() over (
            partition by report_date
            order by (cbp_apprehended_excl_mexico is null), preference
        ) as choice
    from candidates

),

compared as (

    -- Days both publications carry: which figures, published by both, differ.
    select
        export.report_date,
        report.source_file as daily_report_file,
        list_filter([
            case when export.cbp_apprehended_excl_mexico <> report.cbp_apprehended_excl_mexico
                    then 'cbp_apprehended_excl_mexico'
            end,
            case when export.cbp_in_custody <> report.cbp_in_custody then 'cbp_in_custody' end,
            case when export.cbp_transferred_out <> report.cbp_transferred_out
                    then 'cbp_transferred_out'
            end,
            case when export.hhs_in_care <> report.hhs_in_care then 'hhs_in_care' end,
            case when export.hhs_discharged <> report.hhs_discharged then 'hhs_discharged' end
        ], lambda x: x is not null) as figures_in_conflict,
        export.source_file as export_file
    from export
    inner join report on report.report_date = export.report_date

)

select
    ranked.report_date,
    ranked.cbp_apprehended_excl_mexico,
    ranked.cbp_in_custody,
    ranked.cbp_transferred_out,
    ranked.hhs_in_care,
    ranked.hhs_discharged,
    ranked.daily_source,
    ranked.source_file,
    ranked.source_row,
    ranked.vintage,
    ranked.first_published_vintage,
    ranked.vintages_with_date,
    ranked.conflicting_copies_in_file,
    coalesce(compared.figures_in_conflict, []) as figures_in_conflict,
    -- The file that lost the day, when the other publication had it too.
    case ranked.daily_source
        when 'healthdata_export' then compared.daily_report_file
        else compared.export_file
    end as other_source_file
from ranked
left join compared on compared.report_date = ranked.report_date
where ranked.choice = 1
