-- CBP encounters by area of responsibility, one row per figure, as the newest file carrying the
-- month published it (macros/rows_of_newest_file.sql: CBP re-issues each month in every
-- rolling four-fiscal-year window that covers it, sometimes revised).

with newest as (

    select * from {{ rows_of_newest_file(source('raw', 'cbp_encounters_aor'), 'month') }}

),

renamed as (

    select
        cast(month as date) as month,
        cast(fiscal_year as integer) as fiscal_year,
        fiscal_year_published,
        month_grouping,
        component,
        land_border_region,
        area_of_responsibility,
        aor_abbv,
        demographic,
        demographic_published,
        citizenship,
        title_of_authority,
        encounter_type,
        cast(encounters as bigint) as encounters,
        source_file,
        source_row,
        vintage,
        first_published_vintage,
        vintages_with_period as vintages_with_month
    from newest

)

select * from renamed
