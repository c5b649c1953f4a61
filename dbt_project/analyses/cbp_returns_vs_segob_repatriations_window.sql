-- A six-month window of CBP's encounters of Mexican unaccompanied children (USBP by title, and
-- all components) next to SEGOB's repatriations of unaccompanied Mexican minors from the US,
-- month by month: the comparison Amnesty International's 2021 report made for November 2020 -
-- April 2021. Change the window with --vars '{window_start: "2024-01-01", window_end: "2024-06-01"}'.
--
-- A side with no figure is NULL (not published, or not in the warehouse): SEGOB's section-5
-- table has no public copy, and the replay mirror's (2024-2025 only) is constructed — see
-- segob_figures_constructed before quoting a number.

{% set window_start = var('window_start', '2020-11-01') %}
{% set window_end = var('window_end', '2021-04-01') %}

select
    month,
    cbp_mexican_uc_usbp_apprehensions_title_8,
    cbp_mexican_uc_usbp_expulsions_title_42,
    cbp_mexican_uc_usbp_apprehensions_title_8 + cbp_mexican_uc_usbp_expulsions_title_42
        as cbp_mexican_uc_usbp,
    cbp_mexican_uc_encounters as cbp_mexican_uc_all_components,
    segob_unaccompanied_minor_repatriations,
    min_return_rate,
    segob_figures_constructed,
    cbp_vintage,
    segob_vintage,
    notes
from {{ ref('mexico_uc_return_rate_monthly') }}
where month between date '{{ window_start }}' and date '{{ window_end }}'

union all

select
    null as month,
    sum(cbp_mexican_uc_usbp_apprehensions_title_8),
    sum(cbp_mexican_uc_usbp_expulsions_title_42),
    sum(cbp_mexican_uc_usbp_apprehensions_title_8 + cbp_mexican_uc_usbp_expulsions_title_42),
    sum(cbp_mexican_uc_encounters),
    -- A window total only when every month has the SEGOB figure.
    case when count(segob_unaccompanied_minor_repatriations) = count(*)
        then sum(segob_unaccompanied_minor_repatriations) end,
    case when count(segob_unaccompanied_minor_repatriations) = count(*)
        then sum(segob_unaccompanied_minor_repatriations)::double
            / nullif(sum(cbp_mexican_uc_encounters), 0) end,
    bool_or(segob_figures_constructed),
    max(cbp_vintage),
    max(segob_vintage),
    'window total ' || '{{ window_start }}' || ' .. ' || '{{ window_end }}'
from {{ ref('mexico_uc_return_rate_monthly') }}
where month between date '{{ window_start }}' and date '{{ window_end }}'
order by month nulls last
