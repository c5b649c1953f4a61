-- Amnesty International's MINIMUM return rate of unaccompanied Mexican children, month by month:
-- SEGOB's repatriation events of unaccompanied Mexican minors received from the US divided by
-- CBP's encounters of unaccompanied children with citizenship MEXICO, all titles and components
-- (the method of footnote 27 of "Pushed into harm's way", 2021: 8,632 / 12,514 = "a minimum rate
-- of 69 percent", Nov 2020 - Apr 2021). It is a floor, not the share of children returned: CBP
-- counts encounters (children later sent to HHS included), SEGOB counts repatriations it
-- received, both events, not people. A side that has not published a month is NULL (and so is
-- the rate), never 0.

with cbp as (

    select * from {{ ref('int_cbp__minor_encounters_monthly') }}

),

segob as (

    select * from {{ ref('int_segob__mexican_minor_repatriations_monthly') }}

),

months as (

    select * from {{ ref('int_calendar_months') }}
    where month in (select month from cbp union select month from segob)

),

policy as (

    select * from {{ ref('int_policy__regimes_by_month') }}

),

joined as (

    select
        months.month,
        months.fiscal_year,
        months.calendar_year,
        months.title_42_in_force,
        months.title_42_days_in_month,
        cbp.mexican_uc as cbp_mexican_uc_encounters,
        cbp.mexican_uc_title_8 as cbp_mexican_uc_title_8,
        cbp.mexican_uc_title_42 as cbp_mexican_uc_title_42,
        cbp.mexican_uc_usbp_title_8 as cbp_mexican_uc_usbp_apprehensions_title_8,
        cbp.mexican_uc_usbp_title_42 as cbp_mexican_uc_usbp_expulsions_title_42,
        cbp.mexican_uc_ofo as cbp_mexican_uc_ofo,
        segob.unaccompanied_minors as segob_unaccompanied_minor_repatriations,
        segob.unaccompanied_minors_0_11 as segob_unaccompanied_minor_repatriations_0_11,
        segob.unaccompanied_minors_12_17 as segob_unaccompanied_minor_repatriations_12_17,
        segob.accompanied_minors as segob_accompanied_minor_repatriations,
        cbp.land_border_regions as cbp_land_border_regions,
        cbp.vintage as cbp_vintage,
        cbp.source_files as cbp_source_files,
        segob.vintage as segob_vintage,
        segob.source_files as segob_source_files,
        segob.figures_constructed as segob_figures_constructed,
        policy.policy_regimes_in_force,
        policy.policy_changes_in_month
    from months
    left join cbp on cbp.month = months.month
    left join segob on segob.month = months.month
    left join policy on policy.month = months.month

),

rated as (

    select
        *,
        segob_unaccompanied_minor_repatriations::double
        / nullif(cbp_mexican_uc_encounters, 0) as min_return_rate,
        segob_unaccompanied_minor_repatriations::double
        / nullif(cbp_mexican_uc_title_8, 0) as min_return_rate_title_8
    from joined

)

select
    month,
    fiscal_year,
    calendar_year,
    cbp_mexican_uc_encounters,
    cbp_mexican_uc_title_8,
    cbp_mexican_uc_title_42,
    cbp_mexican_uc_usbp_apprehensions_title_8,
    cbp_mexican_uc_usbp_expulsions_title_42,
    cbp_mexican_uc_ofo,
    segob_unaccompanied_minor_repatriations,
    segob_unaccompanied_minor_repatriations_0_11,
    segob_unaccompanied_minor_repatriations_12_17,
    segob_accompanied_minor_repatriations,
    min_return_rate,
    min_return_rate > 1 as min_return_rate_above_one,
    min_return_rate_title_8,
    'minimum return rate: SEGOB repatriation events of unaccompanied Mexican minors received from the US / CBP encounters of unaccompanied children with citizenship MEXICO, all titles (8 and 42) and components (USBP, OFO); both events, not people; calendar months; Amnesty International 2021, footnote 27'
        as rate_definition,
    title_42_in_force,
    title_42_days_in_month,
    policy_regimes_in_force,
    policy_changes_in_month,
    nullif(concat_ws(
        '; ',
        case when cbp_mexican_uc_encounters is null then 'CBP has not published this month' end,
        case when segob_unaccompanied_minor_repatriations is null
                then 'SEGOB has not published this month'
        end,
        case when title_42_in_force then 'Title 42 in force on ' || title_42_days_in_month
                || ' day(s): part of CBP encounters are expulsions, not apprehensions'
        end,
        case when policy_changes_in_month is not null
                then 'policy changed within the month: ' || policy_changes_in_month
        end,
        case when segob_figures_constructed
                then 'SEGOB figures CONSTRUCTED (replay mirror), not real'
        end,
        case when title_42_in_force and coalesce(cbp_mexican_uc_title_42, 0) > 0
                and min_return_rate_title_8 is not null
                then 'min_return_rate_title_8 overstates: SEGOB also received children expelled under Title 42'
        end,
        case when min_return_rate > 1
                then 'rate above 1: events on both sides, repeat crossings and timing differ'
        end
    ), '') as notes,
    cbp_land_border_regions,
    cbp_vintage,
    cbp_source_files,
    segob_vintage,
    segob_source_files,
    segob_figures_constructed
from rated
