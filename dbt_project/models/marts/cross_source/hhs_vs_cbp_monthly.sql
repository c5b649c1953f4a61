-- A cross-check between the US agencies: HHS/DHS's daily count of children apprehended and
-- placed in CBP custody, which excludes Mexican children, and HHS's referrals into its care,
-- against CBP's monthly encounters of non-Mexican unaccompanied children UNDER TITLE 8: children
-- expelled under Title 42 were never placed in custody for referral, so dividing by all titles
-- would measure the expulsion policy, not the agencies' agreement. Daily figures are not
-- published every day (no Fridays or Saturdays since March 2021), so the comparison is made per
-- day: the HHS average per reported day vs CBP's monthly count / days in the month.

with cbp as (

    select * from {{ ref('int_cbp__minor_encounters_monthly') }}

),

hhs_daily as (

    select * from {{ ref('int_hhs__uc_flows_monthly') }}

),

hhs_pages as (

    select * from {{ ref('int_hhs__uc_monthly_measures') }}

),

policy as (

    select * from {{ ref('int_policy__regimes_by_month') }}

),

months as (

    select * from {{ ref('int_calendar_months') }}
    where month in (
            select month from cbp
            union select month from hhs_daily
            union select month from hhs_pages
        )

),

joined as (

    select
        months.month,
        months.fiscal_year,
        months.calendar_year,
        months.days_in_month,
        months.title_42_in_force,
        cbp.non_mexican_uc as cbp_non_mexican_uc_encounters,
        cbp.non_mexican_uc_title_8 as cbp_non_mexican_uc_title_8,
        cbp.non_mexican_uc_title_42 as cbp_non_mexican_uc_title_42,
        cbp.non_mexican_uc_usbp as cbp_non_mexican_uc_usbp,
        cbp.non_mexican_uc_ofo as cbp_non_mexican_uc_ofo,
        cbp.non_mexican_uc::double / months.days_in_month as cbp_non_mexican_uc_per_day,
        cbp.non_mexican_uc_title_8::double / months.days_in_month
            as cbp_non_mexican_uc_title_8_per_day,
        policy.policy_regimes_in_force,
        policy.policy_changes_in_month,
        hhs_daily.days_reported as hhs_days_reported,
        hhs_daily.apprehended_excl_mexico_reported_days as hhs_apprehended_excl_mexico_reported_days,
        hhs_daily.apprehended_excl_mexico_per_reported_day as hhs_apprehended_excl_mexico_per_day,
        hhs_daily.transferred_out_reported_days as hhs_transferred_out_reported_days,
        hhs_pages.referrals_30day_avg as hhs_referrals_30day_avg,
        cbp.land_border_regions as cbp_land_border_regions,
        cbp.vintage as cbp_vintage,
        cbp.source_files as cbp_source_files,
        hhs_daily.daily_sources as hhs_daily_sources,
        hhs_daily.vintage as hhs_daily_vintage,
        hhs_daily.source_files as hhs_daily_source_files,
        hhs_pages.vintage as hhs_monthly_vintage,
        hhs_pages.source_files as hhs_monthly_source_files
    from months
    left join cbp on cbp.month = months.month
    left join hhs_daily on hhs_daily.month = months.month
    left join hhs_pages on hhs_pages.month = months.month
    left join policy on policy.month = months.month

)

select
    month,
    fiscal_year,
    calendar_year,
    days_in_month,
    cbp_non_mexican_uc_encounters,
    cbp_non_mexican_uc_title_8,
    cbp_non_mexican_uc_title_42,
    cbp_non_mexican_uc_usbp,
    cbp_non_mexican_uc_ofo,
    cbp_non_mexican_uc_per_day,
    cbp_non_mexican_uc_title_8_per_day,
    hhs_days_reported,
    hhs_days_reported = days_in_month as hhs_every_day_reported,
    hhs_apprehended_excl_mexico_reported_days,
    hhs_apprehended_excl_mexico_per_day,
    hhs_transferred_out_reported_days,
    hhs_referrals_30day_avg,
    hhs_apprehended_excl_mexico_per_day / nullif(cbp_non_mexican_uc_title_8_per_day, 0)
        as hhs_daily_to_cbp_title_8_ratio,
    hhs_referrals_30day_avg / nullif(cbp_non_mexican_uc_title_8_per_day, 0)
        as hhs_referrals_to_cbp_title_8_ratio,
    'per day: HHS = average over the reported days of children apprehended and placed in CBP custody (excluding Mexico; people placed in custody), or HHS 30-day average of referrals into its care; CBP = non-Mexican UC encounters under Title 8 (events; expelled children were never referred) / days in month'
        as comparison_definition,
    title_42_in_force,
    policy_regimes_in_force,
    policy_changes_in_month,
    cbp_land_border_regions,
    cbp_vintage,
    cbp_source_files,
    hhs_daily_sources,
    hhs_daily_vintage,
    hhs_daily_source_files,
    hhs_monthly_vintage,
    hhs_monthly_source_files
from joined
