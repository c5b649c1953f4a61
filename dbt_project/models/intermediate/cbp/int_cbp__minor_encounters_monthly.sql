-- CBP encounters of minors summed by month: Mexican and non-Mexican unaccompanied children by
-- title and component, and Mexican accompanied minors. A month CBP's files carry has its sums
-- (0 where no row matched); a month they do not carry has no row here.
--
-- Every layout feeds it (int_cbp__encounters: one file per month). A sum that needs the
-- component (USBP / OFO) is NULL for a month whose file does not publish it (the state
-- layout): NULL says "not published in this layout", where 0 would claim no encounters.
-- source_layout and components_published say which case a month is.

with encounters as (

    select
        *,
        demographic = 'UC / Single Minors' as is_uc,
        citizenship = 'MEXICO' as is_mexican
    from {{ ref('int_cbp__encounters') }}

),

sums as (

    select
        month,
        {{ sum_where('encounters', "is_uc and is_mexican") }} as mexican_uc,
        {{ sum_where('encounters', "is_uc and is_mexican and title_of_authority = 'Title 8'") }} as mexican_uc_title_8,
        {{ sum_where('encounters', "is_uc and is_mexican and title_of_authority = 'Title 42'") }} as mexican_uc_title_42,
        case when bool_and(component is not null) then {{ sum_where('encounters', "is_uc and is_mexican and component = 'U.S. Border Patrol'") }} end as mexican_uc_usbp,
        case when bool_and(component is not null) then {{ sum_where('encounters', "is_uc and is_mexican and component = 'U.S. Border Patrol' and title_of_authority = 'Title 8'") }} end as mexican_uc_usbp_title_8,
        case when bool_and(component is not null) then {{ sum_where('encounters', "is_uc and is_mexican and component = 'U.S. Border Patrol' and title_of_authority = 'Title 42'") }} end as mexican_uc_usbp_title_42,
        case when bool_and(component is not null) then {{ sum_where('encounters', "is_uc and is_mexican and component = 'Office of Field Operations'") }} end as mexican_uc_ofo,
        {{ sum_where('encounters', "demographic = 'Accompanied Minors' and is_mexican") }} as mexican_accompanied_minors,
        {{ sum_where('encounters', "is_uc and not is_mexican") }} as non_mexican_uc,
        {{ sum_where('encounters', "is_uc and not is_mexican and title_of_authority = 'Title 8'") }} as non_mexican_uc_title_8,
        {{ sum_where('encounters', "is_uc and not is_mexican and title_of_authority = 'Title 42'") }} as non_mexican_uc_title_42,
        case when bool_and(component is not null) then {{ sum_where('encounters', "is_uc and not is_mexican and component = 'U.S. Border Patrol'") }} end as non_mexican_uc_usbp,
        case when bool_and(component is not null) then {{ sum_where('encounters', "is_uc and not is_mexican and component = 'Office of Field Operations'") }} end as non_mexican_uc_ofo,
        {{ sum_where('encounters', 'is_uc') }} as all_uc,
        bool_and(component is not null) as components_published,
        any_value(source_layout) as source_layout,
        list_sort(list(distinct land_border_region)) as land_border_regions,
        list_sort(list(distinct source_file)) as source_files,
        max(vintage) as vintage,
        min(first_published_vintage) as first_published_vintage,
        max(vintages_with_month) as vintages_with_month
    from encounters
    group by month

)

select * from sums
